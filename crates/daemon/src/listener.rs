//! The daemons' listening sockets in the run directory.
//!
//! A socket file left by a daemon that died is replaced; a socket with a
//! live server behind it is refused, as is anything that is not a socket.
//! (The instance lock already keeps two daemons of one kind apart; the
//! connect test also protects against a server started another way.)

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Binding the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A server already answers on the path.
    #[error("{} is in use by a running server", .0.display())]
    InUse(PathBuf),
    /// Something other than a socket is at the path.
    #[error("{} exists and is not a socket; remove it", .0.display())]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("cannot listen on {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The socket file a daemon bound. Dropping it removes the file if it is
/// still the one bound (a successor may already have replaced it), and
/// logs a removal that fails.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    /// Device and inode of the file when it was bound.
    id: Option<(u64, u64)>,
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.id.is_some() && file_id(&self.path) == self.id {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// Binds a non-blocking stream listener at `path` with permissions `mode`;
/// the [`SocketFile`] removes the file when dropped.
pub fn bind(path: &Path, mode: u32) -> Result<(UnixListener, SocketFile), ListenError> {
    let io = |source| ListenError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(ListenError::InUse(path.to_path_buf())),
            Err(_) => {
                tracing::info!("replacing stale socket {}", path.display());
                std::fs::remove_file(path).map_err(io)?;
            }
        },
        Ok(_) => return Err(ListenError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        id: file_id(path),
    };
    Ok((listener, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_is_replaced_live_one_refused() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("sock");
        let (first, file) = bind(&path, 0o660).unwrap();
        assert!(matches!(bind(&path, 0o660), Err(ListenError::InUse(_))));
        drop(first); // the file stays: now it is stale
        std::mem::forget(file);
        let _second = bind(&path, 0o660).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
    }

    #[test]
    fn the_socket_file_goes_at_drop_unless_replaced() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("sock");
        let (_l, file) = bind(&path, 0o600).unwrap();
        assert_eq!(file.path(), path);
        drop(file);
        assert!(!path.exists());
        // A successor's socket at the same path is left alone.
        let (_l, file) = bind(&path, 0o600).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (_successor, successors) = bind(&path, 0o600).unwrap();
        drop(file);
        assert!(path.exists());
        drop(successors);
        assert!(!path.exists());
    }

    #[test]
    fn regular_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("sock");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(
            bind(&path, 0o660),
            Err(ListenError::NotASocket(_))
        ));
    }
}
