import Foundation
import GraftTensor

/// Prepares batches on a background thread while the model computes: decoding, fitting and augmentation run
/// ahead by `prefetch` batches (memory stays bounded by that many batches). Batch k's randomness comes from
/// (seed, k) alone, so the result does not depend on timing.
public final class BatchLoader: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: Result<Preprocessor.Batch, Error>] = [:]
    private var nextToProduce = 0
    private var nextToTake = 0
    private var cancelled = false
    private let total: Int
    private let prefetch: Int
    private var thread: Thread?

    /// `skip` leaves out the first batches (resuming inside an epoch); the rest keep their own randomness.
    public init(source: any ImageSource, batches: [[Int]], preprocessor: Preprocessor, augmenter: Augmenter?,
                seed: UInt64, prefetch: Int = 2, skip: Int = 0) {
        total = batches.count
        self.prefetch = max(1, prefetch)
        nextToTake = min(skip, batches.count)
        nextToProduce = nextToTake
        let t = Thread { [unowned self] in
            for (k, indices) in batches.enumerated() where k >= skip {
                self.condition.lock()
                while !self.cancelled && k - self.nextToTake >= self.prefetch { self.condition.wait() }
                let stop = self.cancelled
                self.condition.unlock()
                if stop { return }
                var rng = SeededGenerator(seed: seed &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15)
                let result = Result { try preprocessor.batch(source, indices, augmenter: augmenter, rng: &rng) }
                self.condition.lock()
                self.ready[k] = result
                self.nextToProduce = k + 1
                self.condition.broadcast()
                self.condition.unlock()
            }
        }
        t.stackSize = 1 << 22
        thread = t
        t.start()
    }

    /// The next batch in order, waiting for it if needed; nil after the last one.
    public func next() throws -> Preprocessor.Batch? {
        condition.lock()
        defer { condition.unlock() }
        guard nextToTake < total else { return nil }
        while ready[nextToTake] == nil { condition.wait() }
        let result = ready.removeValue(forKey: nextToTake)
        nextToTake += 1
        condition.broadcast()
        return try result?.get()
    }

    /// Stops producing (the thread ends after its current batch).
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    deinit { cancel() }
}
