import Foundation
import Testing
import GraftTensor
import GraftTestSupport
@testable import GraftData

/// PNG/JPEG decoding against what Pillow decodes (tools/make_fixtures.py), and the failures.
struct DecodeTests {
    static func path(_ n: String) -> String { TestSupport.fixture("images/\(n)") }

    @Test(arguments: ["rgb.png", "gray.png", "rgba.png", "palette.png", "gray16.png", "rgb.jpg", "gray.jpg"])
    func decodesLikePillow(_ name: String) throws {
        let (pixels, shape) = try ImageDecoder.decode(file: Self.path(name))
        let expected = try NPY.read(Self.path("\(name).expected.npy"))
        let want = expected.rank == 2 ? expected.shape + [1] : expected.shape
        #expect(shape == want)
        let err = zip(pixels, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        // Same libjpeg-turbo algorithm (ISLOW DCT, fancy upsampling) as Pillow: equal to the value.
        #expect(err <= 1e-4, "\(name): max difference \(err)")
    }

    @Test(arguments: ["truncated.jpg", "garbage.png"])
    func corruptImagesFailNamingTheFile(_ name: String) {
        do {
            _ = try ImageDecoder.decode(file: Self.path(name))
            Issue.record("\(name) decoded")
        } catch let e as DataError {
            #expect(e.description.hasPrefix(Self.path(name)))
            #expect(e.description.contains("corrupt"))
        } catch {
            Issue.record("untyped \(error)")
        }
    }

    @Test func notAnImageAndMissingFile() {
        #expect(throws: DataError.self) { try ImageDecoder.decode(file: TestSupport.fixture("npy/f4.npy")) }
        #expect(throws: DataError.self) { try ImageDecoder.decode(file: "/nonexistent/cat.png") }
    }

    @Test func fittingModes() throws {
        // A 2×4 single-channel ramp placed into 4×4 slots.
        let src: [Float] = [0, 10, 20, 30, 40, 50, 60, 70]
        func place(_ fit: ImageFit, _ target: [Int]) -> [Float] {
            var out = [Float](repeating: -1, count: target.reduce(1, *))
            src.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { ImagePlacement.place(s.baseAddress!, [2, 4, 1], into: $0.baseAddress!, target, fit: fit) } }
            return out
        }
        #expect(place(.pad, [4, 4, 1]) == [0, 0, 0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 0, 0, 0, 0])
        #expect(place(.nearest, [1, 2, 1]) == [0, 20])
        // Crop to the target's 1:1 aspect: the middle 2×2 (10, 20, 50, 60), then resize 2×2 → 2×2 is the identity.
        #expect(place(.crop, [2, 2, 1]) == [10, 20, 50, 60])
        // Half-pixel bilinear: a 2-wide row resized to 4 gives 0, 2.5, 7.5, 10 for a 0…10 ramp.
        var out = [Float](repeating: 0, count: 4)
        [Float(0), 10].withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { ImagePlacement.place(s.baseAddress!, [1, 2, 1], into: $0.baseAddress!, [1, 4, 1], fit: .resize) } }
        #expect(out == [0, 2.5, 7.5, 10])
        // Gray → RGB repeats the value; RGB → gray uses ITU-R 601 luma.
        var rgb = [Float](repeating: 0, count: 3)
        [Float(100)].withUnsafeBufferPointer { s in rgb.withUnsafeMutableBufferPointer { ImagePlacement.place(s.baseAddress!, [1, 1, 1], into: $0.baseAddress!, [1, 1, 3], fit: .pad) } }
        #expect(rgb == [100, 100, 100])
        var gray = [Float](repeating: 0, count: 1)
        [Float(100), 200, 50].withUnsafeBufferPointer { s in gray.withUnsafeMutableBufferPointer { ImagePlacement.place(s.baseAddress!, [1, 1, 3], into: $0.baseAddress!, [1, 1, 1], fit: .pad) } }
        #expect(abs(gray[0] - (29.9 + 117.4 + 5.7)) < 1e-3)
    }

    @Test(arguments: ["caffe", "tf", "torch"])
    func preprocessingEqualsKerasApplications(_ mode: String) throws {
        let x = try NPY.read(Self.path("preprocess_input.npy"))
        let want = try NPY.read(Self.path("preprocess_\(mode).npy"))
        var y = x
        y.withUnsafeMutableBufferPointer { (try? PreprocessMode(parsing: mode))?.apply($0.baseAddress!, count: $0.count, channels: 3) }
        let err = zip(y.scalars, want.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(err < 1e-4, "\(mode): \(err)")
    }

    @Test func defaultModesByArchitecture() {
        #expect(PreprocessMode.default(forModel: "vgg16") == .caffe)
        #expect(PreprocessMode.default(forModel: "resnet50") == .caffe)
        #expect(PreprocessMode.default(forModel: "mobilenetv2_1.00_224") == .tf)
        #expect(PreprocessMode.default(forModel: "xception") == .tf)
        #expect(PreprocessMode.default(forModel: "densenet121") == .torch)
        #expect(PreprocessMode.default(forModel: "efficientnetb0") == PreprocessMode.none)
        #expect(PreprocessMode.default(forModel: "lenet5") == .scale(1.0 / 255))
    }
}
