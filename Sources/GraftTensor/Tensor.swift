import Foundation

/// Reference-counted Float32 buffer behind a `Tensor`: 64-byte aligned, or a slice of a `TensorArena` placed to
/// match the file it is read from (4-byte aligned at least; no kernel needs more, only speed does).
final class TensorStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// The arena the buffer was carved from, or nil for a buffer of its own (from `BufferPool`).
    private let arena: TensorArena?

    init(count: Int) {
        self.count = count
        let raw = BufferPool.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        arena = nil
    }

    init(count: Int, in arena: TensorArena, at raw: UnsafeMutableRawPointer) {
        self.count = count
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.arena = arena
    }

    func copy() -> TensorStorage {
        let s = TensorStorage(count: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }

    deinit {
        if let arena {
            arena.release(UnsafeMutableRawPointer(pointer), byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        } else {
            BufferPool.release(UnsafeMutableRawPointer(pointer), byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        }
    }
}

/// A dense Float32 tensor, row-major and contiguous, with value (copy-on-write) semantics.
///
/// Activations are NHWC (`[batch, height, width, channels]`), convolution kernels HWIO
/// (`[height, width, in, out]`), Dense kernels `[in, out]`: Keras's layouts, so loading a checkpoint is a copy.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    /// The dimensions, outermost first.
    public private(set) var shape: [Int]
    var storage: TensorStorage

    /// Number of elements (product of `shape`; 1 for a scalar).
    public var count: Int { storage.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        storage = TensorStorage(count: shape.reduce(1, *))
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    /// A tensor of `shape` holding `values` in row-major order.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) holds \(shape.reduce(1, *)) values, given \(values.count)")
        self.shape = shape
        storage = TensorStorage(count: values.count)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A tensor whose contents are unspecified, for kernels that overwrite every element.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        storage = TensorStorage(count: shape.reduce(1, *))
    }

    /// A tensor whose contents are unspecified, carved from `arena`; nil when the arena has no room left. Its
    /// address lies `alignedLike % 64` bytes (rounded down to whole floats) past a multiple of 64: given the
    /// file offset of the bytes it will be filled from, the kernel's copy runs with source and destination
    /// aligned alike (a third faster than 8 or 24 bytes apart).
    public init?(uninitializedShape shape: [Int], in arena: TensorArena, alignedLike offset: Int = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let count = shape.reduce(1, *)
        guard let raw = arena.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, phase: offset & 63) else { return nil }
        self.shape = shape
        storage = TensorStorage(count: count, in: arena, at: raw)
    }

    /// A 1-D tensor.
    public init(_ values: [Float]) {
        self.init(shape: [values.count], values: values)
    }

    /// The elements in row-major order.
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Read-only access to the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: basePointer, count: count))
    }

    /// Mutable access to the elements; copies first when the storage is shared.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: basePointer, count: count))
    }

    @usableFromInline var basePointer: UnsafeMutablePointer<Float> { storage.pointer }

    @usableFromInline mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// The same elements viewed with another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Element at a multi-dimensional index (for tests and small tools; kernels use pointers).
    public subscript(_ index: Int...) -> Float {
        get { storage.pointer[offset(index)] }
        set {
            makeUnique()
            storage.pointer[offset(index)] = newValue
        }
    }

    private func offset(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var o = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "index \(index) out of range for shape \(shape)")
            o = o * d + i
        }
        return o
    }

    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape) [\(preview)\(count > 8 ? ", …" : "")]"
    }
}

extension Tensor: Equatable {
    /// Exact equality of shape and every element.
    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.shape == b.shape else { return false }
        if a.storage === b.storage { return true }
        return memcmp(a.basePointer, b.basePointer, a.count * MemoryLayout<Float>.stride) == 0
    }
}

/// Shape helpers.
public enum Shape {
    /// `(2, 3)` as NumPy prints it; `(4,)` for one dimension; `None` for unknown (-1) dimensions.
    public static func describe(_ shape: [Int]) -> String {
        let parts = shape.map { $0 < 0 ? "None" : String($0) }
        return parts.count == 1 ? "(\(parts[0]),)" : "(" + parts.joined(separator: ", ") + ")"
    }
}
