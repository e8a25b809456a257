import CHDF5
import Foundation
import GraftCore
@testable import GraftHDF5
import GraftTestSupport
import Testing

/// Files crafted by an attacker (made here with libhdf5 itself): Graft reads only the file it is given, and walks
/// that loop end. Most tests open the files unchecked, to test the reading code itself on particular objects; the
/// default open runs the same code in the check child first, and gives the same typed error (the last test).
struct HostileFileTests {
    /// Builds a file with libhdf5's C API; `body` gets the file id.
    static func craft(_ name: String, _ body: (hid_t) -> Void) throws -> String {
        let path = try TestSupport.makeTemporaryDirectory("graft-hostile").appendingPathComponent(name).path
        let f = H5Fcreate(path, graft_H5F_ACC_TRUNC(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
        try #require(f >= 0)
        body(f)
        H5Fclose(f)
        return path
    }

    /// A float32 dataset of `count` values whose raw storage is the external file `target`.
    static func externalStorage(_ target: String, count: Int) throws -> String {
        try craft("external-storage.h5") { f in
            var dims = [hsize_t(count)]
            let space = H5Screate_simple(1, &dims, nil)
            let dcpl = H5Pcreate(graft_H5P_DATASET_CREATE())
            H5Pset_external(dcpl, target, 0, hsize_t(count * 4))
            let d = H5Dcreate2(f, "weights", graft_H5T_IEEE_F32LE(), space, graft_H5P_DEFAULT(), dcpl, graft_H5P_DEFAULT())
            H5Dclose(d)
            H5Pclose(dcpl)
            H5Sclose(space)
        }
    }

    static func expectOutside(_ path: String, naming object: String, _ body: () throws -> Void,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch let e as HDF5Error {
            #expect(e.kind == .outsideFile, "\(e)", sourceLocation: sourceLocation)
            #expect(e.path == object && e.file == path, "\(e)", sourceLocation: sourceLocation)
            #expect(!e.description.contains("\n"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("untyped error \(error)", sourceLocation: sourceLocation)
        }
    }

    /// External raw storage naming /etc/passwd (whose bytes `predict` once copied into its output) or /dev/zero
    /// (3.8 GB read): refused when the dataset is opened, before any read, by the integrity walk and by a plain open.
    @Test(arguments: ["/etc/passwd", "/dev/zero"])
    func externalStorageIsRefused(_ target: String) throws {
        let path = try Self.externalStorage(target, count: 64)
        Self.expectOutside(path, naming: "/weights") { _ = try HDF5File.open(path, policy: .unchecked).readEverything() }
        Self.expectOutside(path, naming: "/weights") { _ = try HDF5File.open(path, policy: .unchecked).dataset("/weights") }
        Self.expectOutside(path, naming: "/weights") { _ = try HDF5File.open(path, policy: .unchecked).root().dataset("weights").read(Float.self) }
    }

    /// External links to another HDF5 file, to a dataset and to a group in it.
    @Test func externalLinksAreRefused() throws {
        let other = try Self.craft("other.h5") { f in
            var dims = [hsize_t(4)]
            let space = H5Screate_simple(1, &dims, nil)
            let d = H5Dcreate2(f, "secret", graft_H5T_IEEE_F32LE(), space, graft_H5P_DEFAULT(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            var values: [Float] = [1, 2, 3, 4]
            H5Dwrite(d, graft_H5T_NATIVE_FLOAT(), graft_H5S_ALL(), graft_H5S_ALL(), graft_H5P_DEFAULT(), &values)
            H5Dclose(d)
            H5Gclose(H5Gcreate2(f, "folder", graft_H5P_DEFAULT(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT()))
        }
        let path = try Self.craft("external-link.h5") { f in
            let g = H5Gcreate2(f, "model_weights", graft_H5P_DEFAULT(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            H5Lcreate_external(other, "/secret", g, "kernel", graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            H5Lcreate_external(other, "/folder", g, "nested", graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            H5Gclose(g)
        }
        Self.expectOutside(path, naming: "/model_weights/kernel") { _ = try HDF5File.open(path, policy: .unchecked).readEverything() }
        Self.expectOutside(path, naming: "/model_weights/kernel") { _ = try HDF5File.open(path, policy: .unchecked).dataset("/model_weights/kernel") }
        Self.expectOutside(path, naming: "/model_weights/nested") { _ = try HDF5File.open(path, policy: .unchecked).group("/model_weights/nested") }
        Self.expectOutside(path, naming: "/model_weights/kernel") { _ = try HDF5Tree.render(try HDF5File.open(path, policy: .unchecked)) }
        #expect(try HDF5File.open(path, policy: .unchecked).root().group("model_weights").kind(of: "kernel") == nil)
    }

    /// A group that links back to the root (hard links) and soft links that point at each other: every walk ends,
    /// each group read once.
    @Test func linkCyclesEnd() throws {
        let path = try Self.craft("cycle.h5") { f in
            var g = H5Gcreate2(f, "a", graft_H5P_DEFAULT(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            for i in 0..<20 {   // a chain 20 deep whose end links back to the root
                let next = H5Gcreate2(g, "g\(i)", graft_H5P_DEFAULT(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
                H5Gclose(g)
                g = next
            }
            H5Lcreate_hard(f, "/", g, "back_to_root", graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            H5Lcreate_hard(f, "/a", g, "back_to_a", graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            H5Gclose(g)
            H5Lcreate_soft("/s2", f, "s1", graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
            H5Lcreate_soft("/s1", f, "s2", graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
        }
        let started = Date()
        _ = try HDF5File.open(path, policy: .unchecked).readEverything()
        let lines = try HDF5Tree.render(try HDF5File.open(path, policy: .unchecked))
        #expect(lines.filter { $0.contains("another link to a group shown above") }.count == 2)
        #expect(lines.count < 40)
        #expect(throws: HDF5Error.self) { try HDF5File.open(path, policy: .unchecked).dataset("/s1") }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    /// A chunked dataset declared at 1 GiB and never written (a 146 KB file made `predict` allocate 4.3 GB of fill
    /// values), compressed or not, and one written only in part: refused before anything is allocated.
    @Test(arguments: [false, true])
    func declaredButUnstoredDataIsRefused(_ compressed: Bool) throws {
        let path = try Self.craft("unstored.h5") { f in
            var dims = [hsize_t(1 << 28)], chunk = [hsize_t(1 << 16)]
            let space = H5Screate_simple(1, &dims, nil)
            let dcpl = H5Pcreate(graft_H5P_DATASET_CREATE())
            H5Pset_chunk(dcpl, 1, &chunk)
            if compressed { H5Pset_deflate(dcpl, 4) }
            H5Dclose(H5Dcreate2(f, "never_written", graft_H5T_IEEE_F32LE(), space, graft_H5P_DEFAULT(), dcpl, graft_H5P_DEFAULT()))
            // One chunk written of 4096.
            let d = H5Dcreate2(f, "partly_written", graft_H5T_IEEE_F32LE(), space, graft_H5P_DEFAULT(), dcpl, graft_H5P_DEFAULT())
            var count = [hsize_t(1 << 16)], start = [hsize_t(0)]
            let fileSpace = H5Dget_space(d)
            H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
            let memSpace = H5Screate_simple(1, &count, nil)
            var values = [Float](repeating: 1, count: 1 << 16)
            H5Dwrite(d, graft_H5T_NATIVE_FLOAT(), memSpace, fileSpace, graft_H5P_DEFAULT(), &values)
            H5Sclose(memSpace)
            H5Sclose(fileSpace)
            H5Dclose(d)
            H5Pclose(dcpl)
            H5Sclose(space)
        }
        for name in ["never_written", "partly_written"] where !(compressed && name == "partly_written") {
            do {
                _ = try HDF5File.open(path, policy: .unchecked).dataset(name).read(Float.self)
                Issue.record("\(name) read")
            } catch let e as HDF5Error {
                #expect(e.kind == .tooLarge && e.path == "/\(name)" && e.detail.contains("stored"), "\(e)")
            }
        }
        #expect(throws: HDF5Error.self) { try HDF5File.open(path, policy: .unchecked).readEverything() }
    }

    /// HDF5's own flock is off: a file stays openable while another open description of it holds a lock (as the
    /// copy a child process holds between fork and exec did, failing opens with "unable to lock file, errno = 11").
    @Test func opensDoNotDependOnFileLocks() throws {
        let path = try Self.craft("locked.h5") { f in
            H5Gclose(H5Gcreate2(f, "g", graft_H5P_DEFAULT(), graft_H5P_DEFAULT(), graft_H5P_DEFAULT()))
        }
        let fd = open(path, O_RDWR)
        #expect(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        defer { close(fd) }
        #expect(try HDF5File.open(path, policy: .unchecked).root().kind(of: "g") == .group)
        #expect(try HDF5File.open(path, writable: true).root().kind(of: "g") == .group)
    }

    /// The crafted files tools/make_hostile.py ships, opened the default way (checked in a child) and unchecked:
    /// both refuse with the same `HDF5Error`, kind, file, object and detail (the child's error crosses over typed).
    @Test func theCheckChildRelaysTheSameTypedError() throws {
        let dir = TestSupport.fixture("hostile")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".h5") }.sorted()
        #expect(files.count >= 8)
        var refused = 0
        for name in files {
            let path = "\(dir)/\(name)"
            func error(_ policy: HDF5OpenPolicy) -> HDF5Error? {
                do { try HDF5File.open(path, policy: policy).readEverything() } catch let e as HDF5Error { return e } catch {
                    Issue.record("\(name): untyped \(error)")
                }
                return nil
            }
            let inProcess = error(.unchecked), checked = error(.standard)
            if inProcess != nil { refused += 1 }   // some are read whole (a cycle walked once, names escaped)
            #expect(checked == inProcess, "\(name): \(String(describing: checked)) vs \(String(describing: inProcess))")
        }
        #expect(refused >= 4)
    }
}
