import Foundation
import Testing
import GraftTestSupport

/// Data sources that name FIFOs, devices and folders instead of files: an error naming the path, or with
/// `--skip-bad` a skipped and counted image; never a hang (a FIFO blocked `open()` for ever).
struct NonRegularFileTests {
    static let model = TestSupport.fixture("keras/keras3_lenet.h5")

    /// A copy of the fixture class folder with a FIFO posing as a PNG in one class.
    static func folderWithFIFO() throws -> URL {
        let dir = try TestSupport.makeTemporaryDirectory("graft-fifo")
        let data = dir.appendingPathComponent("data")
        try FileManager.default.copyItem(atPath: TestSupport.fixture("images/folder"), toPath: data.path)
        let firstClass = try #require(try FileManager.default.contentsOfDirectory(atPath: data.path).sorted().first)
        #expect(mkfifo(data.appendingPathComponent(firstClass).appendingPathComponent("pipe.png").path, 0o644) == 0)
        return data
    }

    static func extract(_ data: String, skipBad: Bool = false) throws -> TestSupport.ProcessResult {
        let out = try TestSupport.makeTemporaryDirectory("graft-fifo-out").appendingPathComponent("f.npy").path
        return try TestSupport.runGraft(["extract", model, "--data", data, "--output", out, "--quiet"] + (skipBad ? ["--skip-bad"] : []),
                                        timeout: 60)
    }

    @Test func fifoInAClassFolder() throws {
        let data = try Self.folderWithFIFO()
        let refused = try Self.extract(data.path)
        #expect(!refused.timedOut)
        #expect(refused.status == 1 && refused.stderr.contains("pipe.png") && refused.stderr.contains("FIFO"), "\(refused.stderr)")
        let skipped = try Self.extract(data.path, skipBad: true)
        #expect(!skipped.timedOut)
        #expect(skipped.status == 0, "\(skipped.stderr)")
    }

    @Test(arguments: ["fifo", "/dev/zero", "folder"])
    func csvNamingANonRegularFile(_ kind: String) throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-fifo-csv")
        let target: String
        switch kind {
        case "fifo":
            target = dir.appendingPathComponent("pipe.png").path
            #expect(mkfifo(target, 0o644) == 0)
        case "folder":
            target = dir.path
        default:
            target = kind
        }
        let csv = dir.appendingPathComponent("data.csv")
        try "path,label\n\(target),0\n".write(to: csv, atomically: true, encoding: .utf8)
        let r = try Self.extract(csv.path)
        #expect(!r.timedOut)
        #expect(r.status == 1 && r.stderr.contains(target) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test func fifoAsArraysAndCSV() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-fifo-arrays")
        let x = dir.appendingPathComponent("x.npy").path, csv = dir.appendingPathComponent("list.csv").path
        #expect(mkfifo(x, 0o644) == 0 && mkfifo(csv, 0o644) == 0)
        for spec in ["\(x),\(x)", csv] {
            let r = try Self.extract(spec)
            #expect(!r.timedOut, "\(spec)")
            #expect(r.status == 1 && r.stderr.contains("FIFO"), "\(spec): \(r.stderr)")
        }
        let p = try TestSupport.runGraft(["predict", Self.model, "--input", x, "--output", dir.appendingPathComponent("y.npy").path], timeout: 60)
        #expect(!p.timedOut && p.status == 1 && p.stderr.contains("FIFO"), "\(p.stderr)")
    }

    /// A model or architecture path that is a FIFO: every command that opens one answers at once.
    @Test func fifoAsAModel() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-fifo-model")
        let h5 = dir.appendingPathComponent("m.h5").path, keras = dir.appendingPathComponent("m.keras").path
        let json = dir.appendingPathComponent("m.json").path
        for p in [h5, keras, json] { #expect(mkfifo(p, 0o644) == 0) }
        let y = dir.appendingPathComponent("y.npy").path
        for args in [["inspect", h5], ["summary", h5], ["summary", keras], ["export", keras, "--output", dir.appendingPathComponent("o.h5").path],
                     ["predict", TestSupport.fixture("keras/keras3_lenet.weights.h5"), "--architecture", json,
                      "--input", TestSupport.fixture("npy/f4.npy"), "--output", y]] {
            let r = try TestSupport.runGraft(args, timeout: 60)
            #expect(!r.timedOut && r.status == 1 && r.stderr.contains("FIFO") && r.stderr.split(separator: "\n").count == 1,
                    "\(args[0]): \(r.stderr)")
        }
    }
}
