import CHDF5
import Foundation
import GraftCore

extension HDF5File {
    /// Reads many numeric datasets of this file into float32 buffers, as `HDF5Dataset.read(into:)` does one by one.
    /// Plain contiguous float32 datasets (`isPlainContiguousFloat32`) of a file opened from disk are read with
    /// positioned reads of libhdf5's own file descriptor, in pieces spread over the cores: for a model's weights
    /// most of the time is the kernel copying bytes and mapping fresh pages, which one thread cannot hide.
    /// Everything else goes through libhdf5 first, in order.
    /// - Throws: `HDF5Error` naming the dataset whose read failed or came up short.
    public func readFloats(_ requests: [(dataset: HDF5Dataset, buffer: UnsafeMutableBufferPointer<Float>)]) throws {
        let fd = diskDescriptor()
        var pieces: [Piece] = []
        let pieceBytes = 4 << 20
        for (r, (dataset, buffer)) in requests.enumerated() {
            guard let fd, fd >= 0, let extent = dataset.plainFloat32Extent(),
                  extent.size == buffer.count * MemoryLayout<Float>.stride, let base = buffer.baseAddress else {
                try dataset.read(into: buffer)
                continue
            }
            var done = 0
            while done < extent.size {
                let n = min(pieceBytes, extent.size - done)
                pieces.append(Piece(offset: extent.offset + done, bytes: n, into: UnsafeMutableRawPointer(base) + done, request: r))
                done += n
            }
        }
        guard let fd, !pieces.isEmpty else { return }
        let failures = FailureList()
        // Each piece writes its own bytes of one caller buffer, which stay alive for the whole call.
        nonisolated(unsafe) let all = pieces
        let cores = RuntimeOptions.current.workers
        let workers = max(1, min(cores, pieces.count))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            // Worker w takes every workers-th piece: pieces are at most 4 MiB, so the split is even enough.
            for i in stride(from: w, to: all.count, by: workers) {
                let p = all[i]
                // Map the destination's pages in one call (MADV_POPULATE_WRITE, Linux 5.14; ignored where unknown)
                // instead of taking a page fault per 4 KiB inside the copy: 47 vs 55 ms for ResNet50's 100 MB.
                let page = 4096
                let start = Int(bitPattern: p.into) & ~(page - 1)
                let end = (Int(bitPattern: p.into) + p.bytes + page - 1) & ~(page - 1)
                _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, madvPopulateWrite)
                var done = 0
                while done < p.bytes {
                    let n = pread(fd, p.into + done, p.bytes - done, off_t(p.offset + done))
                    if n > 0 { done += n; continue }
                    if n < 0 && errno == EINTR { continue }
                    failures.add(i, p.request, n < 0 ? String(cString: strerror(errno)) : "the file ends early")
                    return
                }
            }
        }
        if let (request, reason) = failures.first { throw requests[request].dataset.error(.readFailed, nil, reason) }
    }

    /// The descriptor libhdf5 reads this file through, when it is an ordinary file on disk (the sec2 driver) opened
    /// read-only.
    func diskDescriptor() -> Int32? {
        guard !isWritable else { return nil }   // libhdf5 may hold data not yet written
        HDF5Runtime.quiet()
        defer { _ = HDF5Runtime.takeErrorStack() }
        let fapl = H5Fget_access_plist(id)
        guard fapl >= 0 else { return nil }
        defer { H5Pclose(fapl) }
        guard H5Pget_driver(fapl) == graft_H5FD_SEC2() else { return nil }
        var handle: UnsafeMutableRawPointer?
        guard H5Fget_vfd_handle(id, fapl, &handle) >= 0, let handle else { return nil }
        return handle.load(as: Int32.self)
    }
}

/// `MADV_POPULATE_WRITE` from <linux/mman.h> (glibc's headers as Swift sees them do not always carry it).
private let madvPopulateWrite: Int32 = 23

/// One positioned read: `bytes` bytes at `offset` of the file into `into`, for request number `request`.
private struct Piece {
    let offset: Int
    let bytes: Int
    let into: UnsafeMutableRawPointer
    let request: Int
}

/// Failed reads from concurrent readers (request number and reason); the first piece's is reported.
private final class FailureList: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [(piece: Int, request: Int, reason: String)] = []

    func add(_ piece: Int, _ request: Int, _ reason: String) {
        lock.lock()
        errors.append((piece, request, reason))
        lock.unlock()
    }

    var first: (request: Int, reason: String)? {
        errors.min { $0.piece < $1.piece }.map { ($0.request, $0.reason) }
    }
}
