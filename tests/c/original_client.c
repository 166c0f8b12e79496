/*
 * A client written the way the original lsusd's C clients were: plain
 * open/flock/fstat/read on the files in the run directory, nothing from
 * this project. The integration tests compile it with cc and run it
 * against the Rust lsusd to show that such programs work unchanged.
 *
 *   original_client RUN block SECS   shared flock on disabled for SECS
 *   original_client RUN abort        read one byte of disabled
 *   original_client RUN watch N      watch N suspend cycles, print them
 *   original_client RUN request      create request, wait for removal
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[4096];

static const char *at(const char *run, const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", run, name);
	return path;
}

static void die(const char *what)
{
	fprintf(stderr, "original_client: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The original's suspend_watch registration: lock, check still the empty file. */
static int watch_open(const char *run)
{
	for (;;) {
		struct stat a, b;
		int fd = open(at(run, "watching"), O_RDONLY);
		if (fd < 0)
			die("open watching");
		if (flock(fd, LOCK_SH) < 0)
			die("flock watching");
		if (fstat(fd, &a) == 0 && stat(at(run, "watching"), &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_nlink > 0 && a.st_size == 0)
			return fd;
		close(fd);
		usleep(10000);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: original_client RUN block|abort|watch|request [N]\n");
		return 2;
	}
	const char *run = argv[1], *cmd = argv[2];
	int n = argc > 3 ? atoi(argv[3]) : 1;

	if (strcmp(cmd, "block") == 0) {
		int fd = open(at(run, "disabled"), O_RDONLY);
		if (fd < 0 || flock(fd, LOCK_SH) < 0)
			die("block");
		printf("blocked\n");
		fflush(stdout);
		sleep(n);
		printf("allowed\n");
		return 0;
	}
	if (strcmp(cmd, "abort") == 0) {
		char c;
		int fd = open(at(run, "disabled"), O_RDONLY);
		if (fd < 0 || read(fd, &c, 1) < 0)
			die("abort");
		return 0;
	}
	if (strcmp(cmd, "request") == 0) {
		int fd = open(at(run, "request"), O_RDWR | O_CREAT, 0644);
		struct stat st;
		if (fd < 0)
			die("request");
		close(fd);
		while (stat(at(run, "request"), &st) == 0)
			usleep(10000);
		printf("request done\n");
		return 0;
	}
	if (strcmp(cmd, "watch") == 0) {
		int in = inotify_init1(IN_CLOEXEC);
		if (in < 0 || inotify_add_watch(in, run, IN_MODIFY | IN_MOVED_TO) < 0)
			die("inotify");
		int fd = watch_open(run);
		printf("watching\n");
		fflush(stdout);
		for (int cycle = 0; cycle < n;) {
			char buf[4096];
			struct stat st, now;
			if (fstat(fd, &st) < 0)
				die("fstat");
			if (st.st_size == 0) {
				if (read(in, buf, sizeof(buf)) < 0 && errno != EINTR)
					die("read inotify");
				continue;
			}
			/* Suspend imminent: register for the next cycle, then ready. */
			int next = open(at(run, "watching-next"), O_RDONLY);
			if (next < 0 || flock(next, LOCK_SH) < 0)
				die("watching-next");
			printf("suspend\n");
			fflush(stdout);
			if (fstat(next, &st) < 0)
				die("fstat next");
			flock(fd, LOCK_UN);
			/* Resumed when watching is our watching-next. */
			for (;;) {
				if (stat(at(run, "watching"), &now) == 0 && now.st_ino == st.st_ino)
					break;
				if (read(in, buf, sizeof(buf)) < 0 && errno != EINTR)
					die("read inotify");
			}
			close(fd);
			fd = next;
			printf("resumed\n");
			fflush(stdout);
			cycle++;
		}
		return 0;
	}
	fprintf(stderr, "original_client: unknown command %s\n", cmd);
	return 2;
}
