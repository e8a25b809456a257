import Foundation

/// Reading the files a user names as data: only regular files are opened as data. A FIFO blocks `open()` for ever
/// (even with `--skip-bad`), a device such as `/dev/zero` never ends, and a directory is no image; each is an error
/// naming the path (or, for images, skipped and counted with `--skip-bad`).
public enum DataFile {
    /// Why `path` cannot be read as a data file, or nil when it is a regular file (symbolic links followed).
    public static func problem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return errno == ENOENT ? "file is missing" : "cannot be read (\(String(cString: strerror(errno))))"
        }
        return kindProblem(st.st_mode)
    }

    /// Nil for a regular file's mode, else what the path is instead.
    static func kindProblem(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "is a folder, not a file"
        case S_IFIFO: return "is a FIFO (named pipe), not a regular file"
        case S_IFCHR, S_IFBLK: return "is a device, not a regular file"
        case S_IFSOCK: return "is a socket, not a regular file"
        default: return "is not a regular file"
        }
    }

    /// The whole file, read only if it is a regular file of at most `limit` bytes. Opened without blocking and checked
    /// on the open descriptor, so a path swapped for a FIFO after a check still cannot hang the read.
    public static func read(_ path: String, limit: Int = 4 << 30) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw DataError(path, errno == ENOENT ? "file not found" : "cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DataError(path, "cannot be read (\(String(cString: strerror(errno))))") }
        if let problem = kindProblem(st.st_mode) { throw DataError(path, problem) }
        let size = Int(st.st_size)
        guard size <= limit else { throw DataError(path, "is \(size >> 20) MiB, more than the \(limit >> 20) MiB a data file may be") }
        var data = Data(count: size)
        var done = 0
        try data.withUnsafeMutableBytes { (buf: UnsafeMutableRawBufferPointer) in
            while done < size {
                let n = Foundation.read(fd, buf.baseAddress! + done, size - done)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw DataError(path, "read failed (\(String(cString: strerror(errno))))") }
                if n == 0 { break }   // the file shrank while being read
                done += n
            }
        }
        return done == size ? data : data.prefix(done)
    }
}
