import Foundation
import GraftTensor
import ZIPFoundation

/// The one `--data` syntax shared by every command and by recipes:
///
/// - `fashion-mnist:train`, `fashion-mnist:test`: the Debian package `dataset-fashion-mnist`;
/// - a folder with one sub-folder of PNG/JPEG images per class (classes sorted by name, as Keras's
///   `image_dataset_from_directory`);
/// - a `.csv` of `path,label` rows (paths relative to the CSV; labels are class names or integers);
/// - an `.npz` with arrays `x` (NHWC, uint8 or float) and `y` (integer labels), or `X.npy,Y.npy`;
/// - `idx:IMAGES,LABELS`: an MNIST-style IDX pair (gzipped or not).
public enum DataSource {
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Loads a source. With `skipBad`, unreadable images are left out and counted; otherwise they are errors.
    public static func load(_ spec: String, skipBad: Bool = false) throws -> (source: any ImageSource, skipped: Int) {
        if spec.hasPrefix("fashion-mnist:") {
            return (try BuiltinDatasets.fashionMNIST(split: String(spec.dropFirst("fashion-mnist:".count))), 0)
        }
        if spec.hasPrefix("idx:") {
            let parts = spec.dropFirst(4).split(separator: ",").map(String.init)
            guard parts.count == 2 else { throw DataError(spec, "expected idx:IMAGES,LABELS") }
            return (try BuiltinDatasets.idxPair(images: parts[0], labels: parts[1]), 0)
        }
        if spec.hasSuffix(".npz") { return (try npz(spec), 0) }
        if spec.contains(",") && spec.split(separator: ",").allSatisfy({ $0.hasSuffix(".npy") }) {
            let parts = spec.split(separator: ",").map(String.init)
            guard parts.count == 2 else { throw DataError(spec, "expected X.npy,Y.npy") }
            return (try arrays(x: try NPY.read(parts[0]), y: try NPY.read(parts[1]), name: spec), 0)
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: spec, isDirectory: &isDir) {
            if isDir.boolValue { return try folder(spec, skipBad: skipBad) }
            if spec.lowercased().hasSuffix(".csv") { return try csv(spec, skipBad: skipBad) }
            if let problem = DataFile.problem(spec) { throw DataError(spec, problem) }
            throw DataError(spec, "not a data source: give a class folder, a .csv, an .npz, X.npy,Y.npy, idx:… or fashion-mnist:…")
        }
        throw DataError(spec, "no such file or folder, and not a built-in source (fashion-mnist:train, fashion-mnist:test)")
    }

    /// The `[H, W, C]` a sample of shape `sample` is held as, in the same order: images as they are (`[H, W]` →
    /// `[H, W, 1]`), a sequence of token ids `[T]` as `[T, 1, 1]`, a sequence of feature vectors `[T, F]` as
    /// `[T, F, 1]` (when the data are arrays, not images: see `arrays`), a clip of frames `[T, H, W, C]` as
    /// `[T·H, W, C]`. A model's input of that shape reads the batch reshaped (`Model.fittingInput`).
    public static func heldShape(_ sample: [Int], sequence: Bool = false) -> [Int]? {
        switch sample.count {
        case 1: return [sample[0], 1, 1]
        case 2: return [sample[0], sample[1], 1]
        case 3: return sample
        case 4: return [sample[0] * sample[1], sample[2], sample[3]]
        default: return nil
        }
    }

    /// In-memory dataset from arrays `x` `[N, …]` (images `[N, H, W(, C)]`, token ids `[N, T]`, feature sequences
    /// `[N, T, F]`, clips `[N, T, H, W, C]`) and labels `y` `[N]`.
    public static func arrays(x: Tensor, y: Tensor, name: String) throws -> ImageDataset {
        guard x.rank >= 2 && x.rank <= 5, let held = heldShape(Array(x.shape.dropFirst())) else {
            throw DataError(name, "x must be N×T (token ids), N×T×F or N×H×W (sequences, gray images), N×H×W×C (images) or N×T×H×W×C (clips), got \(Shape.describe(x.shape))")
        }
        guard y.count == x.shape[0] else { throw DataError(name, "\(y.count) labels for \(x.shape[0]) images") }
        // Labels arrive as floats (any NPY dtype is read into a Tensor): whole numbers below 100,000 only (the most
        // classes a head may have; labels [1e6, 0] built a head of 1,000,001 classes).
        if let bad = y.scalars.first(where: { !($0 >= 0 && $0 < 100_000 && $0 == $0.rounded()) }) {
            throw DataError(name, "label \(bad) is not a class index (a whole number from 0 to 99999)")
        }
        let labels = y.scalars.map { Int($0) }
        let k = (labels.max() ?? -1) + 1
        return ImageDataset(imageShape: held, pixels: x.scalars, labels: labels, ids: (0..<labels.count).map(String.init),
                            classNames: (0..<k).map(String.init))
    }

    /// An `.npz` (as `numpy.savez` or `savez_compressed` write it) holding `x` and `y`.
    public static func npz(_ path: String) throws -> ImageDataset {
        let archive: Archive
        if let problem = DataFile.problem(path) { throw DataError(path, problem) }
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw DataError(path, FileManager.default.fileExists(atPath: path) ? "not a readable .npz (zip) file" : "file not found")
        }
        var names = Set<String>()
        for entry in archive where !names.insert(entry.path).inserted {
            throw DataError(path, "holds two entries named \(entry.path) (NumPy would read the last one); refusing an ambiguous archive")
        }
        // Counted as the bytes inflate (a header's declared size proves nothing): at most 4 GiB and a quarter of
        // the machine's memory per array.
        let limit = Int(min(UInt64(4) << 30, ProcessInfo.processInfo.physicalMemory / 4))
        struct TooLarge: Error {}
        func array(_ name: String) throws -> Tensor {
            guard let entry = archive["\(name).npy"] else { throw DataError(path, "has no array \(name) (expected x and y)") }
            guard entry.uncompressedSize <= UInt64(limit) else { throw DataError(path, "array \(name) is too large") }
            var data = Data()
            do {
                _ = try archive.extract(entry, skipCRC32: false) { chunk in
                    guard data.count + chunk.count <= limit else { throw TooLarge() }
                    data.append(chunk)
                }
            } catch is TooLarge {
                throw DataError(path, "array \(name) inflates to more than \(limit >> 20) MiB (its header declares \(entry.uncompressedSize) bytes)")
            } catch {
                throw DataError(path, "cannot extract \(name).npy (\(error))")
            }
            return try NPY.decode(data, file: "\(path)!\(name).npy")
        }
        return try arrays(x: try array("x"), y: try array("y"), name: path)
    }

    /// A folder of class sub-folders.
    public static func folder(_ path: String, skipBad: Bool) throws -> (source: any ImageSource, skipped: Int) {
        let fm = FileManager.default
        let entries = try fm.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        let classes = entries.filter { var d: ObjCBool = false; return fm.fileExists(atPath: "\(path)/\($0)", isDirectory: &d) && d.boolValue }
        guard !classes.isEmpty else { throw DataError(path, "holds no class folders (expected one sub-folder of images per class)") }
        var paths: [String] = [], labels: [Int] = []
        var skipped = 0
        for (k, c) in classes.enumerated() {
            let files = try fm.contentsOfDirectory(atPath: "\(path)/\(c)").filter {
                imageExtensions.contains(($0 as NSString).pathExtension.lowercased())
            }.sorted()
            guard !files.isEmpty else { throw DataError("\(path)/\(c)", "class folder holds no PNG or JPEG images") }
            for f in files {
                let full = "\(path)/\(c)/\(f)"
                if let problem = FileDataset.check(full) {
                    if skipBad { skipped += 1; continue }
                    throw DataError(full, problem)
                }
                paths.append(full)
                labels.append(k)
            }
        }
        return (FileDataset(paths: paths, labels: labels, classNames: classes), skipped)
    }

    /// A CSV of `path,label` rows, with an optional header; paths relative to the CSV's folder.
    public static func csv(_ path: String, skipBad: Bool) throws -> (source: any ImageSource, skipped: Int) {
        guard let text = String(data: try DataFile.read(path, limit: 1 << 30), encoding: .utf8) else {
            throw DataError(path, "cannot read the CSV as UTF-8 text")
        }
        let base = (path as NSString).deletingLastPathComponent
        var rows: [(String, String, Int)] = []
        for (n, raw) in text.split(whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = line.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"")) }
            if n == 0 && fields.first?.lowercased() == "path" { continue }
            guard fields.count == 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw DataError("\(path):\(n + 1)", "expected path,label")
            }
            rows.append((fields[0], fields[1], n + 1))
        }
        guard !rows.isEmpty else { throw DataError(path, "has no path,label rows") }
        let numeric = rows.allSatisfy { Int($0.1) != nil }
        if numeric, let bad = rows.first(where: { (Int($0.1) ?? 0) < 0 || (Int($0.1) ?? 0) >= 100_000 }) {
            throw DataError("\(path):\(bad.2)", "label \(bad.1) is out of range")
        }
        let classNames: [String] = numeric
            ? (0...max(0, rows.compactMap { Int($0.1) }.max() ?? 0)).map(String.init)
            : Array(Set(rows.map(\.1))).sorted()
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })
        var paths: [String] = [], labels: [Int] = []
        var skipped = 0
        for (file, label, line) in rows {
            guard let l = numeric ? Int(label) : index[label], l >= 0 else {
                throw DataError("\(path):\(line)", "label \(label) is out of range")
            }
            let full = file.hasPrefix("/") ? file : "\(base.isEmpty ? "." : base)/\(file)"
            if let problem = FileDataset.check(full) {
                if skipBad { skipped += 1; continue }
                throw DataError("\(path):\(line)", "\(full): \(problem)")
            }
            paths.append(full)
            labels.append(l)
        }
        return (FileDataset(paths: paths, labels: labels, classNames: classNames), skipped)
    }
}

/// Images read from files on demand (class folders, CSV): memory holds paths and labels only.
public struct FileDataset: ImageSource {
    public var paths: [String]
    public var labels: [Int]
    public var classNames: [String]
    public var ids: [String] { paths }
    public var imageShape: [Int]? { nil }

    public init(paths: [String], labels: [Int], classNames: [String]) {
        self.paths = paths
        self.labels = labels
        self.classNames = classNames
    }

    public func subset(_ indices: [Int]) -> FileDataset {
        FileDataset(paths: indices.map { paths[$0] }, labels: indices.map { labels[$0] }, classNames: classNames)
    }

    public func relabeled(_ labels: [Int], classNames: [String]) -> FileDataset {
        FileDataset(paths: paths, labels: labels, classNames: classNames)
    }

    public func imageShape(of i: Int) throws -> [Int] { try ImageDecoder.check(file: paths[i]) }

    public func fill(_ i: Int, target: [Int], fit: ImageFit, into dst: UnsafeMutablePointer<Float>) throws {
        let (pixels, shape) = try ImageDecoder.decode(file: paths[i])
        pixels.withUnsafeBufferPointer { ImagePlacement.place($0.baseAddress!, shape, into: dst, target, fit: fit) }
    }

    /// A quick check that a file exists and starts like a PNG or JPEG; nil when fine, else the problem.
    static func check(_ path: String) -> String? {
        if let problem = DataFile.problem(path) { return problem }
        guard let h = FileHandle(forReadingAtPath: path) else {
            return FileManager.default.fileExists(atPath: path) ? "cannot be read" : "file is missing"
        }
        defer { try? h.close() }
        let head = [UInt8]((try? h.read(upToCount: 8)) ?? Data())
        if head.count >= 8 && head[0] == 0x89 && head[1] == 0x50 && head[2] == 0x4E && head[3] == 0x47 { return nil }
        if head.count >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF { return nil }
        return "not a PNG or JPEG image"
    }
}
