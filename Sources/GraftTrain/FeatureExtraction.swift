import Foundation
import GraftData
import GraftFiles
import GraftHDF5
import GraftNN
import GraftTensor
import ZIPFoundation

/// Where and how features are written: `.npy` (with `labels.npy` and `ids.txt` beside it), `.npz` (`features`,
/// `labels`, `ids`), `.h5` (datasets `features`, `labels`, `ids`) or `.csv` (`id,label,f0…fn`).
public enum FeatureFormat: String, Sendable, CaseIterable {
    case npy, npz, h5, csv

    public init(path: String) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard let f = FeatureFormat(rawValue: ext) else {
            throw TrainError(file: path, "feature files end in .npy, .npz, .h5 or .csv")
        }
        self = f
    }
}

/// Runs a (cut) model over a data source in order, in batches, and streams one feature row per image to disk.
public struct FeatureExtractor {
    /// How a spatial feature map becomes one row per image: averaged or maxed over height and width, or kept whole.
    public enum Pooling: String, Sendable, Codable { case avg, max, none }

    public let model: Model
    public let preprocessor: Preprocessor
    public var pooling: Pooling = .avg
    public var batchSize = 32
    public var showProgress = true
    /// Told the warning when most features are zero for every image (default: stderr).
    public var warn: (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
    /// Asked before every batch whether to stop (a recipe's Ctrl-C): the output is not written, nothing is left behind.
    public var interruptCheck: () -> Int32? = { Interrupt.pending }

    public init(model: Model, preprocessor: Preprocessor) {
        self.model = model
        self.preprocessor = preprocessor
    }

    /// Writes features of `data` to `path`; returns (rows, features per row). Written atomically.
    @discardableResult
    public func extract(_ data: any ImageSource, to path: String) throws -> (rows: Int, features: Int) {
        let format = try FeatureFormat(path: path)
        // The features' temporary file is created now, so a folder that cannot be written fails before the model runs.
        let features = TemporaryFile(beside: path)
        guard FileManager.default.createFile(atPath: features.path, contents: nil) else {
            throw TrainError(file: path, "cannot write features into \(URL(fileURLWithPath: path).deletingLastPathComponent().path) (\(String(cString: strerror(errno))))")
        }
        let n = data.count
        let batches = epochBatches(count: n, batchSize: batchSize, shuffle: false, seed: 0)
        let loader = BatchLoader(source: data, batches: batches, preprocessor: preprocessor, augmenter: nil, seed: 0)
        let bar = ProgressBar(label: "extract", total: batches.count, enabled: showProgress)
        var sink: FeatureSink?
        var row = 0, width = 0
        var largest: [Float] = []   // the largest |value| of each feature over every image so far
        while let batch = try loader.next() {
            if let sig = interruptCheck() { throw InterruptedError(signal: sig) }
            var y = try model.predict([model.fittingInput(batch.x)])[0]
            y = try pool(y)
            let b = y.shape[0]
            width = y.count / max(b, 1)
            if sink == nil { sink = try FeatureSink(format: format, output: path, features: features, rows: n, width: width) }
            if largest.isEmpty { largest = [Float](repeating: 0, count: width) }
            y.withUnsafeBufferPointer { v in
                for r in 0..<b { for j in 0..<width { largest[j] = max(largest[j], abs(v[r * width + j])) } }
            }
            try sink?.append(y.scalars, labels: Array(data.labels[row..<(row + b)]), ids: Array(data.ids[row..<(row + b)]))
            row += b
            bar.update(row / max(batchSize, 1) + (row % batchSize == 0 ? 0 : 1), images: row, metrics: [])
        }
        guard let sink else { throw TrainError("extract", "the data source is empty") }
        try sink.finish(into: path, classNames: data.classNames)
        if let warning = Self.zeroFeaturesWarning(largest, layer: model.nodes[model.outputNodes[0]].layer.name) { warn(warning) }
        return (row, width)
    }

    /// A warning when at least half the features (largest |value| of each in `largest`) are zero, to 1e-6, for every
    /// image: a layer that says nothing about these images (dead ReLUs, wrong preprocessing, a zeroed checkpoint).
    static func zeroFeaturesWarning(_ largest: [Float], layer: String) -> String? {
        let zero = largest.filter { $0 <= 1e-6 }.count
        guard !largest.isEmpty, zero * 2 >= largest.count else { return nil }
        let share = zero == largest.count ? "all \(largest.count)" : "\(zero) of the \(largest.count)"
        return "layer \(layer): \(share) features are zero for every image (below 1e-6): check the preprocessing and the layer (dead ReLUs, a checkpoint whose weights are zero)"
    }

    func pool(_ y: Tensor) throws -> Tensor {
        guard y.rank == 4 else { return y.reshaped([y.shape[0], y.count / max(y.shape[0], 1)]) }
        switch pooling {
        case .none: return y.reshaped([y.shape[0], y.count / max(y.shape[0], 1)])
        case .avg, .max:
            return try GlobalPooling2D(name: "extract_pool", kind: pooling == .avg ? .average : .max).forward([y], training: false)
        }
    }
}

/// Streams feature rows into the chosen format in temporary files beside the output, then moves them into place.
final class FeatureSink {
    let format: FeatureFormat
    /// The file being written (errors name it) and the temporary file its rows go to first.
    let output: String
    let features: TemporaryFile
    let rows: Int
    let width: Int
    var written = 0
    var labels: [Int] = []
    var ids: [String] = []
    var handle: FileHandle?
    var h5: HDF5File?
    var h5Features: HDF5Dataset?

    /// Why a file operation failed, in a few words (the system's reason, not Foundation's whole error).
    static func reason(_ error: Error) -> String {
        if let e = error as? FileWriteError { return e.reason }
        let ns = error as NSError
        if let posix = (ns.userInfo[NSUnderlyingErrorKey] as? NSError), posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }

    /// The (already created) temporary file holding `header`, open for appending.
    func appendable(header: Data) throws -> FileHandle {
        do {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: features.path))
            try h.write(contentsOf: header)
            return h
        } catch {
            throw TrainError(file: output, "cannot write the features (\(Self.reason(error)))")
        }
    }

    /// Appends `data` to the open file, or throws naming it (a full disk, an I/O error).
    func write(_ data: Data) throws {
        guard let handle else { return }
        do { try handle.write(contentsOf: data) } catch {
            throw TrainError(file: output, "writing the features failed (\(Self.reason(error)))")
        }
    }

    init(format: FeatureFormat, output: String, features: TemporaryFile, rows: Int, width: Int) throws {
        self.format = format
        self.output = output
        self.features = features
        self.rows = rows
        self.width = width
        labels.reserveCapacity(rows)
        switch format {
        case .npy, .npz:
            handle = try appendable(header: NPY.header(shape: [rows, width], descr: "<f4"))
        case .csv:
            let header = "id,label," + (0..<width).map { "f\($0)" }.joined(separator: ",") + "\n"
            handle = try appendable(header: Data(header.utf8))
        case .h5:
            let file = try HDF5File.create(features.path, overwrite: true)
            h5 = file
            h5Features = try file.root().createEmptyDataset("features", shape: [rows, width], gzipLevel: 4)
        }
    }

    func append(_ values: [Float], labels batchLabels: [Int], ids batchIds: [String]) throws {
        labels += batchLabels
        ids += batchIds
        switch format {
        case .npy, .npz:
            try values.withUnsafeBufferPointer { try write(Data(buffer: $0)) }
        case .csv:
            var text = ""
            for (k, id) in batchIds.enumerated() {
                let quoted = id.contains(",") || id.contains("\"") ? "\"\(id.replacingOccurrences(of: "\"", with: "\"\""))\"" : id
                text += "\(quoted),\(batchLabels[k])," + values[(k * width)..<((k + 1) * width)].map { "\($0)" }.joined(separator: ",") + "\n"
            }
            try write(Data(text.utf8))
        case .h5:
            try h5Features?.writeRows(values, start: written)
        }
        written += batchIds.count
    }

    func finish(into path: String, classNames: [String]) throws {
        do {
            try handle?.synchronize()   // a full disk can show only now
            try handle?.close()
        } catch {
            throw TrainError(file: path, "writing the features failed (\(Self.reason(error)))")
        }
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        func fail(_ error: Error) -> Error {
            if error is TrainError || error is HDF5Error { return error }
            return TrainError(file: (error as? FileWriteError)?.path ?? path, Self.reason(error))
        }
        var labelData = NPY.header(shape: [labels.count], descr: "<i8")
        labels.map { Int64($0) }.withUnsafeBufferPointer { labelData.append(Data(buffer: $0)) }
        do {
            switch format {
            case .npy:
                let stem = url.deletingPathExtension().lastPathComponent
                try features.commit(to: path)
                try AtomicWrite.write(labelData, to: dir.appendingPathComponent(stem == "features" ? "labels.npy" : "\(stem).labels.npy").path)
                try AtomicWrite.write(Data((ids.joined(separator: "\n") + "\n").utf8),
                                      to: dir.appendingPathComponent(stem == "features" ? "ids.txt" : "\(stem).ids.txt").path)
            case .npz:
                let featureBytes = Int64(NPY.header(shape: [rows, width], descr: "<f4").count + rows * width * MemoryLayout<Float>.stride)
                let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: features.path))
                defer { try? reader.close() }
                let members: [(String, Data?)] = [("features.npy", nil), ("labels.npy", labelData), ("ids.npy", NPY.encodeStrings(ids))]
                try AtomicWrite.replace(path) { temporary in
                    do {
                        let archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create)
                        for (name, data) in members {
                            let size = data.map { Int64($0.count) } ?? featureBytes
                            try archive.addEntry(with: name, type: .file, uncompressedSize: size, compressionMethod: .none) { position, n in
                                if let data { return data.subdata(in: Int(position)..<(Int(position) + n)) }
                                try reader.seek(toOffset: UInt64(position))
                                return try reader.read(upToCount: n) ?? Data()
                            }
                        }
                    } catch {
                        throw TrainError(file: path, "cannot write the .npz archive (\(String(cString: strerror(errno))))")
                    }
                }
                features.discard()
            case .csv:
                try features.commit(to: path)
            case .h5:
                guard let file = h5 else { return }
                do {   // the root group is closed before the file
                    let root = try file.root()
                    try root.createDataset("labels", values: labels.map { Int64($0) }, shape: [labels.count])
                    try root.createStringDataset("ids", strings: ids)
                    try root.setAttribute("class_names", strings: classNames, variableLength: true)
                }
                h5Features = nil
                try file.close()
                h5 = nil
                try features.commit(to: path)
            }
        } catch {
            throw fail(error)
        }
    }
}
