import Foundation
import Testing
import GraftTensor
@testable import GraftData

/// Each augmentation's exact geometry on small synthetic images, and determinism under a seed.
struct AugmentTests {
    /// A 3×4 single-channel gradient: value 10·y + x.
    static func gradient() -> [Float] { (0..<12).map { Float(($0 / 4) * 10 + $0 % 4) } }

    func apply(_ f: (UnsafeMutablePointer<Float>) -> Void, _ image: [Float]) -> [Float] {
        var x = image
        x.withUnsafeMutableBufferPointer { f($0.baseAddress!) }
        return x
    }

    @Test func flipsMirrorTheGradient() {
        let g = Self.gradient()
        #expect(apply({ Augmentations.flip($0, 3, 4, 1, horizontal: true, vertical: false) }, g) == [3, 2, 1, 0, 13, 12, 11, 10, 23, 22, 21, 20])
        #expect(apply({ Augmentations.flip($0, 3, 4, 1, horizontal: false, vertical: true) }, g) == [20, 21, 22, 23, 10, 11, 12, 13, 0, 1, 2, 3])
    }

    @Test func rotationMovesACornerMarker() {
        // A 5×5 image with a marker at the top-left corner; +90° (counter-clockwise) moves it to the bottom-left.
        var img = [Float](repeating: 0, count: 25)
        img[0] = 255
        let r = apply({ Augmentations.affine($0, 5, 5, 1, degrees: 90, ty: 0, tx: 0, scale: 1, fill: .constant) }, img)
        #expect(abs(r[20] - 255) < 1e-3)
        #expect(r.enumerated().allSatisfy { $0.offset == 20 || abs($0.element) < 1e-3 })
        let back = apply({ Augmentations.affine($0, 5, 5, 1, degrees: -90, ty: 0, tx: 0, scale: 1, fill: .constant) }, r)
        #expect(abs(back[0] - 255) < 1e-3)
    }

    @Test func translationAndFillModes() {
        let g = Self.gradient()
        // Shift right by one: column 0 comes from outside the image.
        let constant = apply({ Augmentations.affine($0, 3, 4, 1, degrees: 0, ty: 0, tx: 1, scale: 1, fill: .constant) }, g)
        #expect(constant == [0, 0, 1, 2, 0, 10, 11, 12, 0, 20, 21, 22])
        let nearest = apply({ Augmentations.affine($0, 3, 4, 1, degrees: 0, ty: 0, tx: 1, scale: 1, fill: .nearest) }, g)
        #expect(nearest == [0, 0, 1, 2, 10, 10, 11, 12, 20, 20, 21, 22])
        let wrap = apply({ Augmentations.affine($0, 3, 4, 1, degrees: 0, ty: 0, tx: 1, scale: 1, fill: .wrap) }, g)
        #expect(wrap == [3, 0, 1, 2, 13, 10, 11, 12, 23, 20, 21, 22])
        let reflect = apply({ Augmentations.affine($0, 3, 4, 1, degrees: 0, ty: 1, tx: 0, scale: 1, fill: .reflect) }, g)
        #expect(reflect == [0, 1, 2, 3, 0, 1, 2, 3, 10, 11, 12, 13])
    }

    @Test func zoomOutShrinksTowardsTheCentre() {
        // Scale 2 about the centre of a 1×5 row: output x samples source 2·(x − 2) + 2.
        let row: [Float] = [0, 10, 20, 30, 40]
        let z = apply({ Augmentations.affine($0, 1, 5, 1, degrees: 0, ty: 0, tx: 0, scale: 2, fill: .constant) }, row)
        #expect(z == [0, 0, 20, 40, 0])
    }

    @Test func cropShiftBrightnessContrastCutout() {
        let g = Self.gradient()
        #expect(apply({ Augmentations.shiftWithZeros($0, 3, 4, 1, dy: 1, dx: -1) }, g) == [0, 0, 0, 0, 1, 2, 3, 0, 11, 12, 13, 0])
        #expect(apply({ Augmentations.erase($0, 3, 4, 1, y0: 1, x0: 1, height: 2, width: 2) }, g) == [0, 1, 2, 3, 10, 0, 0, 13, 20, 0, 0, 23])
        let c = apply({ Augmentations.contrast($0, 1, 2, 1, factor: 2) }, [100, 200])
        #expect(c == [50, 250])
    }

    @Test func seededPipelinesRepeatAndDiffer() throws {
        let aug = try Augmenter(spec: "flip:hv,rotate:30:nearest,translate:0.1,zoom:0.2,crop:1,brightness:0.1,contrast:0.2,noise:0.05,cutout:0.3")
        #expect(aug.ops.count == 9)
        let img = (0..<(8 * 8 * 3)).map { Float($0 % 256) }
        func run(_ seed: UInt64) -> [Float] {
            var x = img
            var rng = SeededGenerator(seed: seed)
            x.withUnsafeMutableBufferPointer { aug.augmentImage($0.baseAddress!, 8, 8, 3, rng: &rng) }
            return x
        }
        #expect(run(1) == run(1))
        #expect(run(1) != run(2))
        #expect(run(1).allSatisfy { $0 >= 0 && $0 <= 255 })
        // Out-of-range numbers are refused while parsing (noise copies of 1e30 trapped converting to Int).
        for bad in ["flip:x", "rotate", "zoom:1.5", "blur:3", "contrast:2", "noise:-1", "noise:0.1:1e30", "noise:0.1:2.5",
                    "translate:1e30", "rotate:1e9", "crop:1e20"] {
            #expect(throws: DataError.self) { try Augmenter(spec: bad) }
        }
        #expect(try Augmenter(items: ["flip:h", "noise:0.05"]) == Augmenter(spec: "flip:h,noise:0.05"))
    }

    @Test(arguments: ["mixup:0.4", "cutmix:1.0"])
    func mixingKeepsTargetsNormalised(_ spec: String) throws {
        let aug = try Augmenter(spec: spec)
        var batch = Preprocessor.Batch(x: Tensor(shape: [4, 6, 6, 1], values: (0..<144).map { Float($0 / 36 * 50) }), labels: [0, 1, 2, 1], targets: nil)
        var rng = SeededGenerator(seed: 5)
        aug.augmentBatch(&batch, classes: 3, rng: &rng)
        let t = try #require(batch.targets)
        #expect(t.shape == [4, 3])
        for i in 0..<4 { #expect(abs((0..<3).reduce(Float(0)) { $0 + t[i, $1] } - 1) < 1e-5) }
        #expect(t.scalars.contains { $0 > 0 && $0 < 1 })   // something was actually mixed
        #expect(aug.mixesLabels)
    }
}

extension AugmentTests {
    @Test func noisyCopies() throws {
        #expect(try Augmenter(spec: "noise:0.05:3").copies == 3)
        #expect(try Augmenter(spec: "noise:0.05,flip:h").copies == 1)
        #expect(throws: DataError.self) { try Augmenter(spec: "noise:0.05:0") }
    }
}
