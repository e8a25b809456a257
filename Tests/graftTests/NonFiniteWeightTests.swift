import CHDF5
import Foundation
import Testing
import GraftTestSupport

/// A checkpoint whose weights hold NaN: predictions are all NaN, so graft says so (a warning naming the tensor),
/// and `--strict` refuses the file.
struct NonFiniteWeightTests {
    static func poisoned() throws -> String {
        let path = try TestSupport.makeTemporaryDirectory("graft-nan").appendingPathComponent("model.h5").path
        try FileManager.default.copyItem(atPath: TestSupport.fixture("keras/keras3_lenet.h5"), toPath: path)
        let f = H5Fopen(path, graft_H5F_ACC_RDWR(), graft_H5P_DEFAULT())
        try #require(f >= 0)
        defer { H5Fclose(f) }
        let d = H5Dopen2(f, "/model_weights/conv1/tiny_lenet/conv1/bias", graft_H5P_DEFAULT())
        try #require(d >= 0)
        var values = [Float](repeating: .nan, count: 4)
        #expect(H5Dwrite(d, graft_H5T_NATIVE_FLOAT(), graft_H5S_ALL(), graft_H5S_ALL(), graft_H5P_DEFAULT(), &values) >= 0)
        H5Dclose(d)
        return path
    }

    @Test func nanWeightsAreReportedAndRefusedWhenStrict() throws {
        let model = try Self.poisoned()
        let warned = try TestSupport.runGraft(["summary", model])
        #expect(warned.status == 0)
        #expect(warned.stderr.contains("warning:") && warned.stderr.contains("conv1/bias") && warned.stderr.contains("NaN"), "\(warned.stderr)")
        let strict = try TestSupport.runGraft(["summary", model, "--strict"])
        #expect(strict.status == 1 && strict.stderr.contains("conv1/bias") && strict.stderr.split(separator: "\n").count == 1, "\(strict.stderr)")
        let clean = try TestSupport.runGraft(["summary", TestSupport.fixture("keras/keras3_lenet.h5"), "--strict"])
        #expect(clean.status == 0 && !clean.stderr.contains("warning"), "\(clean.stderr)")
    }
}
