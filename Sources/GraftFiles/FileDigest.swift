import CCrypto
import Foundation

/// Checksums of files, through OpenSSL's libcrypto.
public enum FileDigest {
    /// The SHA-256 of the file at `path`, as 64 lowercase hex digits, read in 4 MiB pieces.
    public static func sha256(_ path: String) throws(FileWriteError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileWriteError(path, "cannot read it (\(FileWriteError.errnoText()))") }
        defer { close(fd) }
        guard let context = EVP_MD_CTX_new() else { throw FileWriteError(path, "cannot start a SHA-256 digest") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { throw FileWriteError(path, "cannot start a SHA-256 digest") }
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path, "cannot read it (\(FileWriteError.errnoText()))")
            }
            if n == 0 { break }
            _ = buffer.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, n) }
        }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &length) == 1 else { throw FileWriteError(path, "cannot finish its SHA-256 digest") }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }
}
