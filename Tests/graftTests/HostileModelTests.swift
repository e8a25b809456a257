import CHDF5
import Foundation
import Testing
import GraftData
import GraftTensor
import GraftTestSupport

/// A real Keras checkpoint altered by an attacker so that loading it reads another file: every command refuses it
/// with one line naming the dataset, before reading a byte of the other file.
struct HostileModelTests {
    /// `keras3_lenet.h5` whose conv1 kernel's values are stored in `target` (HDF5 external storage).
    static func kernelStoredIn(_ target: String) throws -> String {
        let dir = try TestSupport.makeTemporaryDirectory("graft-hostile-model")
        let path = dir.appendingPathComponent("model.h5").path
        try FileManager.default.copyItem(atPath: TestSupport.fixture("keras/keras3_lenet.h5"), toPath: path)
        let f = H5Fopen(path, graft_H5F_ACC_RDWR(), graft_H5P_DEFAULT())
        try #require(f >= 0)
        defer { H5Fclose(f) }
        let name = "/model_weights/conv1/tiny_lenet/conv1/kernel"
        try #require(H5Ldelete(f, name, graft_H5P_DEFAULT()) >= 0)
        var dims: [hsize_t] = [5, 5, 1, 4]
        let space = H5Screate_simple(4, &dims, nil)
        let dcpl = H5Pcreate(graft_H5P_DATASET_CREATE())
        H5Pset_external(dcpl, target, 0, hsize_t(5 * 5 * 4 * 4))
        let d = H5Dcreate2(f, name, graft_H5T_IEEE_F32LE(), space, graft_H5P_DEFAULT(), dcpl, graft_H5P_DEFAULT())
        try #require(d >= 0)
        H5Dclose(d)
        H5Pclose(dcpl)
        H5Sclose(space)
        return path
    }

    @Test func everyCommandRefusesAKernelStoredInAnotherFile() throws {
        let model = try Self.kernelStoredIn("/etc/passwd")
        let dir = URL(fileURLWithPath: model).deletingLastPathComponent()
        let output = dir.appendingPathComponent("y.npy").path
        let export = dir.appendingPathComponent("copy.keras").path
        for args in [["inspect", model], ["summary", model],
                     ["predict", model, "--input", TestSupport.fixture("npy/f4.npy"), "--output", output],
                     ["export", model, "--output", export]] {
            let r = try TestSupport.runGraft(args)
            #expect(r.status == 1, "\(args[0]): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("/model_weights/conv1/tiny_lenet/conv1/kernel") && r.stderr.contains("external file"),
                    "\(args[0]): \(r.stderr)")
            #expect(!r.stdout.contains("root:"), "\(args[0]) printed the other file")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(!FileManager.default.fileExists(atPath: export))
    }

    /// The attacker's files `tools/make_hostile.py` writes (the fuzzer's seeds): each command refuses each with one
    /// line naming the dataset or group, and prints nothing of another file.
    @Test(arguments: [("external_storage_passwd.h5", "/model_weights/conv1/tiny_lenet/conv1/kernel", "external file"),
                      ("external_storage_zero.h5", "/model_weights/conv1/tiny_lenet/conv1/bias_extra", "external file"),
                      ("external_links.h5", "/model_weights/fc1", "external link"),
                      ("virtual_dataset.h5", "/model_weights/conv1/tiny_lenet/conv1/kernel", "virtual dataset"),
                      ("unstored_chunked.h5", "/model_weights/conv1/tiny_lenet/conv1/huge", "none are stored")])
    func shippedHostileFiles(_ name: String, _ object: String, _ reason: String) throws {
        let model = TestSupport.fixture("hostile/\(name)")
        let dir = try TestSupport.makeTemporaryDirectory("graft-hostile-seed")
        let output = dir.appendingPathComponent("y.npy").path
        let input = dir.appendingPathComponent("x.npy").path
        try NPY.write(Tensor(shape: [2, 16, 16, 1], repeating: 0), to: input)
        for args in [["inspect", model], ["summary", model], ["predict", model, "--input", input, "--output", output],
                     ["export", model, "--output", dir.appendingPathComponent("copy.keras").path]] {
            let r = try TestSupport.runGraft(args)
            #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1, "\(name) \(args[0]): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(object) && r.stderr.contains(reason), "\(name) \(args[0]): \(r.stderr)")
            #expect(!r.stdout.contains("root:"), "\(name) \(args[0]) printed /etc/passwd")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    /// Names holding a terminal escape and a newline: `inspect` prints them escaped (`\u{1B}`, `\n`) and the model
    /// commands refuse the layer name.
    @Test func escapeCharactersInNames() throws {
        let model = TestSupport.fixture("hostile/escape_names.h5")
        let inspect = try TestSupport.runGraft(["inspect", model])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(!inspect.stdout.contains("\u{1B}") && inspect.stdout.contains("fc1\\u{1B}[2J\\nx/"), "\(inspect.stdout)")
        let summary = try TestSupport.runGraft(["summary", model])
        #expect(summary.status == 1 && summary.stderr.contains("control characters") && !summary.stderr.contains("\u{1B}"), "\(summary.stderr)")
    }
}
