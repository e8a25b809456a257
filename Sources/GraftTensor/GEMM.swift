import CBLAS

/// Single-precision GEMM on row-major matrices: `C = alpha * op(A) * op(B) + beta * C`,
/// `op(A)` is `m×k`, `op(B)` is `k×n`, `C` is `m×n`.
///
/// One threading runtime: OpenBLAS runs single-threaded and Graft's own workers split the product, by rows of C
/// when there are enough of them, else by the shared dimension into private partial sums (weight gradients:
/// few rows, a long reduction). This keeps OpenBLAS's spinning threads from competing with the workers that run
/// im2col and element-wise kernels between GEMMs.
@inlinable
public func sgemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    _ = Parallel.configureBLAS
    let workers = Parallel.workers
    let flops = 2.0 * Double(m) * Double(n) * Double(k)
    if workers <= 1 || flops < 2e6 {
        blasGEMM(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    if m >= 32 * workers {
        Parallel.forEach(m, grain: 32) { rows in
            let aOff = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
            blasGEMM(transposeA, transposeB, rows.count, n, k, alpha, aOff, lda, b, ldb, beta, c + rows.lowerBound * ldc, ldc)
        }
        return
    }
    if k >= 256 * workers {
        // Split the reduction: worker w computes alpha · op(A)[:, Kw] · op(B)[Kw, :] into its own buffer.
        let parts = workers
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: parts * m * n)
        defer { partial.deallocate() }
        Parallel.forEach(parts, grain: 1) { range in
            for w in range {
                let lo = k * w / parts, hi = k * (w + 1) / parts
                let aOff = transposeA ? a + lo * lda : a + lo
                let bOff = transposeB ? b + lo : b + lo * ldb
                blasGEMM(transposeA, transposeB, m, n, hi - lo, alpha, aOff, lda, bOff, ldb, 0, partial + w * m * n, n)
            }
        }
        for i in 0..<m {
            let row = c + i * ldc
            for j in 0..<n {
                var s: Float = beta == 0 ? 0 : beta * row[j]
                for w in 0..<parts { s += partial[w * m * n + i * n + j] }
                row[j] = s
            }
        }
        return
    }
    if n >= 64 * workers {
        Parallel.forEach(n, grain: 64) { cols in
            let bOff = transposeB ? b + cols.lowerBound * ldb : b + cols.lowerBound
            blasGEMM(transposeA, transposeB, m, cols.count, k, alpha, a, lda, bOff, ldb, beta, c + cols.lowerBound, ldc)
        }
        return
    }
    blasGEMM(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

@usableFromInline
func blasGEMM(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
              _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Reference GEMM in plain loops (Double accumulation), for tests of the fast paths.
public func referenceGEMM(m: Int, n: Int, k: Int, a: [Float], b: [Float]) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
            c[i * n + j] = Float(s)
        }
    }
    return c
}
