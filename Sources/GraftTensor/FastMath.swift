import CGraftSIMD
import Foundation
import GraftCore

/// `exp`, `tanh` and the logistic sigmoid written without calls or table lookups, so loops over arrays of them
/// compile to SIMD code (glibc's scalar `tanhf` was a third of a LeNet-5 training epoch). Accuracy: a few units
/// in the last place over the whole float range (tests sweep them against Double). One implementation, in C
/// (`CGraftSIMD`'s header, inlined here); whole arrays go through CGraftSIMD's array functions, compiled for AVX2 +
/// FMA as well and picked at run time (`ComputeOptions.simd` off keeps the baseline path).
public enum FastMath {
    /// The `level` argument for CGraftSIMD: −1 (the best the CPU has) unless `ComputeOptions.current.simd` is off.
    public static var simdLevel: Int32 { ComputeOptions.current.simd ? -1 : 0 }

    /// e^x for any float x: 0 below −103.97, +∞ above 88.72283 (ln of the largest float), NaN for NaN.
    @inline(__always)
    public static func exp(_ x: Float) -> Float { graft_expf(x) }

    /// tanh x: an odd Taylor polynomial near 0, (1 − e^(−2|x|)) / (1 + e^(−2|x|)) elsewhere.
    @inline(__always)
    public static func tanh(_ x: Float) -> Float { graft_tanhf(x) }

    /// 1 / (1 + e^(−x)), computed from e^(−|x|) so it neither overflows nor loses precision for negative x.
    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { graft_sigmoidf(x) }

    /// erf x (Abramowitz and Stegun 7.1.26 on `exp`: absolute error below 5e-7).
    @inline(__always)
    public static func erf(_ x: Float) -> Float { graft_erff(x) }
}
