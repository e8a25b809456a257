import Foundation

/// Coordinates the threads that use one set of weights: any number of inference runs at once, or one thing that
/// changes the weights or the layers' state (a training step, a training-mode forward pass, freezing). Models
/// derived from one another share it, since they share layers: a cut, a model with a new head, the head and base
/// of a frozen-base split, and a model that nests another.
///
/// `Model.predict` and `Model.run` take it shared (exclusive with `training: true`); `freeze`, `unfreeze` and
/// `Trainer.trainStep` take it exclusive. `Layer.forward` does not take it: a parent model calls that under its own.
public final class ModelAccess: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    public init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` while no exclusive user runs (other shared ones may).
    public func shared<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// Runs `body` while nobody else uses the weights.
    public func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
