/// Axis permutations: the layout changes that `channels_first` layers, `Permute` and `RepeatVector` need.
extension Tensor {
    /// The tensor with its axes reordered: axis `i` of the result is axis `axes[i]` of this one (NumPy's
    /// `transpose(axes)`). `axes` must be a permutation of `0..<rank`.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<rank), "axes \(axes) are not a permutation of \(rank) axes")
        if axes == Array(0..<rank) { return self }
        let outShape = axes.map { shape[$0] }
        var strides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        // Source stride of each output axis; the innermost output axis is copied in a tight loop.
        let srcStride = axes.map { strides[$0] }
        var out = Tensor(uninitializedShape: outShape)
        guard count > 0 else { return out }
        let inner = outShape[rank - 1], innerStride = srcStride[rank - 1]
        let outer = count / inner
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { x in
                let src = x.baseAddress!, dst = o.baseAddress!
                var index = [Int](repeating: 0, count: rank)   // over the outer axes of the output
                var base = 0
                for row in 0..<outer {
                    let d = dst + row * inner
                    if innerStride == 1 {
                        d.update(from: src + base, count: inner)
                    } else {
                        for j in 0..<inner { d[j] = src[base + j * innerStride] }
                    }
                    // Next outer index (odometer over axes rank-2 … 0).
                    var a = rank - 2
                    while a >= 0 {
                        index[a] += 1
                        base += srcStride[a]
                        if index[a] < outShape[a] { break }
                        base -= srcStride[a] * outShape[a]
                        index[a] = 0
                        a -= 1
                    }
                }
            }
        }
        return out
    }

    /// Moves axis `from` to position `to`, keeping the order of the others.
    public func movingAxis(_ from: Int, to: Int) -> Tensor {
        var axes = Array(0..<rank)
        axes.remove(at: from)
        axes.insert(from, at: to)
        return permuted(axes)
    }
}

extension Tensor {
    /// The tensor with the order of elements reversed along each of `axes` (NumPy's `flip`).
    public func flipped(axes: [Int]) -> Tensor {
        precondition(axes.allSatisfy { $0 >= 0 && $0 < rank }, "axes \(axes) for a rank-\(rank) tensor")
        var strides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        let flip = Set(axes)
        var out = Tensor(uninitializedShape: shape)
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { x in
                for i in 0..<count {
                    var rest = i, source = 0
                    for a in 0..<rank {
                        let index = rest / strides[a]
                        rest %= strides[a]
                        source += (flip.contains(a) ? shape[a] - 1 - index : index) * strides[a]
                    }
                    o[i] = x[source]
                }
            }
        }
        return out
    }
}
