import Foundation
import GraftTensor

/// Prepares batches on a background thread while the model computes: decoding, fitting and augmentation run
/// ahead by `prefetch` batches (memory stays bounded by that many batches). Batch k's randomness comes from
/// (seed, k) alone, so the result does not depend on timing.
public final class BatchLoader: @unchecked Sendable {
    /// What the producer thread and the consumer share. The thread keeps it alive on its own, so a loader that
    /// is dropped early (an error, an interrupt) never leaves the thread reading freed memory.
    final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        var ready: [Int: Result<Preprocessor.Batch, Error>] = [:]
        var nextToTake = 0
        var cancelled = false
        let total: Int
        let prefetch: Int

        init(total: Int, prefetch: Int, start: Int) {
            self.total = total
            self.prefetch = prefetch
            nextToTake = start
        }
    }

    private let shared: Shared

    /// `skip` leaves out the first batches (resuming inside an epoch); the rest keep their own randomness.
    public init(source: any ImageSource, batches: [[Int]], preprocessor: Preprocessor, augmenter: Augmenter?,
                seed: UInt64, prefetch: Int = 2, skip: Int = 0) {
        let shared = Shared(total: batches.count, prefetch: max(1, prefetch), start: min(skip, batches.count))
        self.shared = shared
        let t = Thread {
            for (k, indices) in batches.enumerated() where k >= skip {
                shared.condition.lock()
                while !shared.cancelled && k - shared.nextToTake >= shared.prefetch { shared.condition.wait() }
                let stop = shared.cancelled
                shared.condition.unlock()
                if stop { return }
                var rng = SeededGenerator(seed: seed &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15)
                let result = Result { try preprocessor.batch(source, indices, augmenter: augmenter, rng: &rng) }
                shared.condition.lock()
                shared.ready[k] = result
                shared.condition.broadcast()
                shared.condition.unlock()
            }
        }
        t.stackSize = 1 << 22
        t.start()
    }

    /// The next batch in order, waiting for it if needed; nil after the last one.
    public func next() throws -> Preprocessor.Batch? {
        let s = shared
        s.condition.lock()
        defer { s.condition.unlock() }
        guard s.nextToTake < s.total else { return nil }
        while s.ready[s.nextToTake] == nil { s.condition.wait() }
        let result = s.ready.removeValue(forKey: s.nextToTake)
        s.nextToTake += 1
        s.condition.broadcast()
        return try result?.get()
    }

    /// Stops producing (the thread ends after its current batch).
    public func cancel() {
        shared.condition.lock()
        shared.cancelled = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    deinit { cancel() }
}
