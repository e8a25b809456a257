import Foundation
/// `exp`, `tanh` and the logistic sigmoid written without calls or table lookups, so loops over arrays of them
/// compile to SIMD code (glibc's scalar `tanhf` was a third of a LeNet-5 training epoch). Accuracy: a few units
/// in the last place over the whole float range (tests sweep them against Double).
/// Whole arrays go through CGraftSIMD (the same functions compiled for AVX2 + FMA as well, picked at run time;
/// `GRAFT_SIMD=0` keeps the baseline path).
public enum FastMath {
    /// The `level` argument for CGraftSIMD: −1 (the best the CPU has) unless `GRAFT_SIMD=0`.
    public static let simdLevel: Int32 = ProcessInfo.processInfo.environment["GRAFT_SIMD"] == "0" ? 0 : -1

    /// e^x for any float x: 0 below −103.97, +∞ above 88.72283 (ln of the largest float), NaN for NaN.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        // e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln2 / 2. ln 2 is split in a high part with few mantissa
        // bits (n · hi is exact) and a low part, so r keeps full precision.
        let clamped = Swift.min(Swift.max(x.isNaN ? 0 : x, -103.97), 88.72283)
        // n by the 1.5·2^23 trick: adding it rounds to an integer held in the low mantissa bits (no conversion
        // instruction with range checks, so the loop stays vectorised).
        let shifted = clamped * 1.44269504088896341 + 12582912
        let n = shifted - 12582912
        let ni = Int32(bitPattern: shifted.bitPattern &- 0x4B40_0000)
        let r = (clamped - n * 0.693145751953125) - n * 1.42860682030941723e-6
        // Taylor series of e^r to degree 7 (|r| ≤ 0.347: the next term is below 2^-26 relative), Horner form.
        var p: Float = 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n in two factors, so that n down to −150 (subnormal results) and up to 128 stay representable.
        let half = ni &>> 1
        let a = Float(bitPattern: UInt32(bitPattern: (half &+ 127) &<< 23))
        let b = Float(bitPattern: UInt32(bitPattern: (ni &- half &+ 127) &<< 23))
        let result = p * a * b
        return x.isNaN ? x : (x < -103.97 ? 0 : (x > 88.72283 ? .infinity : result))
    }

    /// tanh x: an odd Taylor polynomial near 0, (1 − e^(−2|x|)) / (1 + e^(−2|x|)) elsewhere.
    @inline(__always)
    public static func tanh(_ x: Float) -> Float {
        let a = Swift.abs(x)
        // |x| < 0.4: Taylor series to x^13 (the x^15 term is below 2e-9).
        let s = x * x
        var q: Float = 21844.0 / 6081075
        q = q * s - 1382.0 / 155925
        q = q * s + 62.0 / 2835
        q = q * s - 17.0 / 315
        q = q * s + 2.0 / 15
        q = q * s - 1.0 / 3
        let small = x + x * s * q
        let t = exp(-2 * Swift.min(a, 9.1))      // beyond 9.1, tanh rounds to ±1
        let large = (1 - t) / (1 + t)
        let signed = Float(bitPattern: (large.bitPattern & 0x7FFF_FFFF) | (x.bitPattern & 0x8000_0000))
        return x.isNaN ? x : (a < 0.4 ? small : signed)
    }

    /// 1 / (1 + e^(−x)), computed from e^(−|x|) so it neither overflows nor loses precision for negative x.
    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float {
        let e = exp(-Swift.abs(x))
        let positive = 1 / (1 + e)
        return x.isNaN ? x : (x >= 0 ? positive : e * positive)
    }
}
