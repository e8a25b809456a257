import Foundation
import GraftData
import GraftFiles
import GraftHDF5
import GraftKeras
import GraftNN
import GraftTensor

/// A run directory: metrics (`metrics.csv`, `metrics.jsonl`), checkpoints and reports. Every file is written
/// atomically; the folder is checked for writability before training starts.
public final class RunDirectory {
    public let url: URL
    public private(set) var records: [EpochRecord] = []
    /// Held for as long as this value lives: a run folder belongs to one process at a time.
    private let lock: RunLock

    /// Opens (creating) a run directory. With `keepRecordsThrough`, the existing `metrics.jsonl` is read back and
    /// its records up to that many epochs kept (resuming).
    /// Files whose presence shows a folder holds a run Graft wrote.
    public static let runMarkers = ["final.h5", "last.h5", "interrupted.h5", "best.h5", "metrics.jsonl", "metrics.csv",
                                    "summary.txt", "recipe.resolved.yaml", "report.md"]

    /// The run files in `path` (empty when it holds no run, or does not exist).
    public static func heldRun(at path: String) -> [String] {
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
        return runMarkers.filter(names.contains)
    }

    /// Whether `name` is something a run writes into its folder (checkpoints, exports, metrics, plots, reports,
    /// features, the recipe baseline's folder). Only these are removed when a run is replaced: other files stay.
    static func isRunOutput(_ name: String) -> Bool {
        runMarkers.contains(name) || name == "confusion.csv" || name == "baseline"
            || name.hasPrefix("final.") || name.hasPrefix("features_")
            || (name.hasSuffix(".svg") || name.hasSuffix(".png")) && ["loss", "accuracy", "confusion", "comparison", "learning_rate"].contains((name as NSString).deletingPathExtension)
    }

    /// Opens (creating) a run directory. With `keepRecordsThrough`, the existing `metrics.jsonl` is read back and
    /// its records up to that many epochs kept (resuming). With `replacing`, the previous run's files are removed
    /// first (once the folder's lock is held), and nothing else in the folder.
    public init(_ path: String, keepRecordsThrough epochs: Int? = nil, replacing: Bool = false) throws {
        url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw TrainError(file: path, "cannot create the run directory (\(error.localizedDescription))")
        }
        let probe = url.appendingPathComponent(".graft-write-test")
        guard FileManager.default.createFile(atPath: probe.path, contents: Data("ok".utf8)) else {
            throw TrainError(file: path, "the run directory is not writable")
        }
        try? FileManager.default.removeItem(at: probe)
        lock = try RunLock.acquire(url)
        removeStaleTemporaryFiles()
        if replacing { try Self.removeRun(in: url) }
        if let epochs, let text = try? String(contentsOf: url.appendingPathComponent("metrics.jsonl"), encoding: .utf8) {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            records = text.split(separator: "\n").compactMap { try? decoder.decode(EpochRecord.self, from: Data($0.utf8)) }
                .filter { $0.epoch <= epochs }
        }
    }

    /// Removes the run outputs in `folder` (`isRunOutput`), the baseline's folder with its own run outputs.
    static func removeRun(in folder: URL) throws {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where isRunOutput(name) {
            let item = folder.appendingPathComponent(name)
            do {
                if name == "baseline" {
                    try removeRun(in: item)
                    if (try? fm.contentsOfDirectory(atPath: item.path))?.allSatisfy({ $0 == ".graft-run.lock" }) == true {
                        try fm.removeItem(at: item)
                    }
                } else {
                    try fm.removeItem(at: item)
                }
            } catch {
                throw TrainError(file: item.path, "cannot remove it to replace the previous run (\(error.localizedDescription))")
            }
        }
    }

    /// Temporary files left by a process that was killed mid-write (kill -9, power loss) are removed; the files
    /// under their final names are always complete (writes rename into place).
    func removeStaleTemporaryFiles() {
        StaleTemporaries.sweep(url.path)
    }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Bytes free for this process on the file system of `path`, or of its nearest existing parent when it does
    /// not exist yet (nil when it cannot be asked).
    public static func freeBytes(at path: String) -> Int? {
        var url = URL(fileURLWithPath: path)
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" { url.deleteLastPathComponent() }
        var st = statvfs()
        guard statvfs(url.path, &st) == 0 else { return nil }
        return Int(clamping: UInt64(st.f_bavail) &* UInt64(st.f_frsize))
    }

    /// Fails before any training when the disk of run folder `path` (made or not) cannot hold what the run will
    /// write (`bytes`, an estimate).
    public static func requireFreeSpace(_ bytes: Int, at path: String, for what: String) throws {
        guard let free = freeBytes(at: path), free < bytes else { return }
        func mb(_ b: Int) -> String { String(format: "%.1f MB", Double(b) / 1_048_576) }
        throw TrainError(file: path, "only \(mb(free)) free on its disk; \(what) need about \(mb(bytes))")
    }

    /// Writes a text file atomically.
    public func write(_ text: String, to name: String) throws {
        do {
            try AtomicWrite.write(Data(text.utf8), to: path(name))
        } catch {
            throw TrainError(file: path(name), error.reason)
        }
    }

    /// Records an epoch and rewrites `metrics.csv` and `metrics.jsonl`.
    public func append(_ record: EpochRecord) throws {
        records.append(record)
        func f(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
        var csv = "stage,epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,images_per_second\n"
        var jsonl = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        for r in records {
            csv += "\(r.stage),\(r.epoch),\(f(r.loss)),\(f(r.accuracy)),\(f(r.valLoss)),\(f(r.valAccuracy)),\(String(format: "%.6g", r.learningRate)),\(f(r.seconds)),\(String(format: "%.1f", r.imagesPerSecond))\n"
            jsonl += String(decoding: try encoder.encode(r), as: UTF8.self) + "\n"
        }
        try write(csv, to: "metrics.csv")
        try write(jsonl, to: "metrics.jsonl")
    }
}

/// Where a fine-tuning run stood when a checkpoint was written (JSON in the checkpoint's `graft_training` group).
public struct ResumeState: Codable, Sendable, Equatable {
    public var stageIndex: Int
    /// Epochs of that stage completed.
    public var stageEpoch: Int
    /// Epochs completed over all stages.
    public var globalEpoch: Int
    /// Set when written mid-epoch (an interrupt).
    public var partial: PartialEpoch?
    public var bestValue: Double?
    public var bestEpoch: Int?

    public init(stageIndex: Int, stageEpoch: Int, globalEpoch: Int, partial: PartialEpoch? = nil, bestValue: Double? = nil, bestEpoch: Int? = nil) {
        self.stageIndex = stageIndex
        self.stageEpoch = stageEpoch
        self.globalEpoch = globalEpoch
        self.partial = partial
        self.bestValue = bestValue
        self.bestEpoch = bestEpoch
    }
}

/// Checkpoints: a Keras legacy `.h5` full model (Keras loads it), plus Graft's training state in a `graft_training`
/// group (optimizer name, step, learning rate, slots per parameter path; epoch, stage and resume state), so a run
/// resumes exactly.
public enum TrainingCheckpoint {
    public static func save(_ model: Model, optimizer: (any Optimizer)?, epoch: Int, stage: String, to path: String,
                            graftVersion: String, task: ModelTask? = nil, resume: ResumeState? = nil) throws {
        let resumeJSON = try resume.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try KerasWriter.writeLegacyH5(model, to: path, graftVersion: graftVersion, task: task) { root in
            let g = try root.createGroup("graft_training")
            try g.setAttribute("epoch", value: Int64(epoch))
            try g.setAttribute("stage", strings: [stage], scalar: true)
            if let resumeJSON { try g.setAttribute("resume_state", string: resumeJSON) }
            guard let optimizer else { return }
            try g.setAttribute("optimizer", strings: [optimizer.name], scalar: true)
            try g.setAttribute("iterations", value: Int64(optimizer.iterations))
            try g.setAttribute("learning_rate", value: Double(optimizer.learningRate))
            let slots = try g.createGroup("slots")
            for (path, byKey) in optimizer.slots.sorted(by: { $0.key < $1.key }) {
                for (key, t) in byKey.sorted(by: { $0.key < $1.key }) {
                    try slots.createDataset("\(path)/\(key)", values: t.scalars, shape: t.shape)
                }
            }
        }
    }

    /// The resume state recorded in a checkpoint, if any.
    public static func resumeState(_ path: String) throws -> ResumeState? {
        let root = try HDF5File.open(path).root()
        guard root.kind(of: "graft_training") == .group else { return nil }
        let g = try root.group("graft_training")
        guard g.hasAttribute("resume_state") else { return nil }
        return try? JSONDecoder().decode(ResumeState.self, from: Data(try g.readStringAttribute("resume_state").utf8))
    }

    /// Restores optimizer state saved by `save`; returns the epoch and stage recorded.
    public static func restore(_ path: String, into optimizer: any Optimizer) throws -> (epoch: Int, stage: String) {
        let root = try HDF5File.open(path).root()
        guard root.kind(of: "graft_training") == .group else {
            throw TrainError(file: path, "holds no Graft training state (graft_training group); cannot resume from it")
        }
        let g = try root.group("graft_training")
        let epoch = Int(try g.readAttribute("epoch", as: Int64.self).first ?? 0)
        let stage = (try? g.readStringAttribute("stage")) ?? "train"
        if let name = try? g.readStringAttribute("optimizer") {
            guard name == optimizer.name else {
                throw TrainError(file: path, "was trained with optimizer \(name), not \(optimizer.name)")
            }
            optimizer.iterations = Int(try g.readAttribute("iterations", as: Int64.self).first ?? 0)
            optimizer.learningRate = Float(try g.readAttribute("learning_rate", as: Double.self).first ?? Double(optimizer.learningRate))
            var slots: [String: [String: Tensor]] = [:]
            var visited = HDF5VisitedGroups()
            func walk(_ group: HDF5Group, _ prefix: [String]) throws {
                guard visited.firstVisit(group) else { return }
                for c in try group.children() {
                    if c.kind == .group { try walk(try group.group(c.name), prefix + [c.name]) }
                    else if c.kind == .dataset {
                        let ds = try group.dataset(c.name)
                        slots[prefix.joined(separator: "/"), default: [:]][c.name] = Tensor(shape: try ds.shape(), values: try ds.read(Float.self))
                    }
                }
            }
            if g.kind(of: "slots") == .group { try walk(try g.group("slots"), []) }
            optimizer.slots = slots
        }
        return (epoch, stage)
    }
}

/// The exclusive lock on a run folder (`flock` on `.graft-run.lock`, which holds the owner's process id). Another
/// process that asks for it is refused at once, naming the holder; within one process the lock is shared (a recipe
/// and the fine-tuning job it runs both open the folder), and it is released when the last holder ends or the
/// process dies, however it dies.
final class RunLock: @unchecked Sendable {
    private static let table = Table()
    private final class Table: @unchecked Sendable {
        let lock = NSLock()
        var held: [String: (fd: Int32, count: Int)] = [:]
    }
    private let key: String

    private init(key: String) { self.key = key }

    static func acquire(_ directory: URL) throws -> RunLock {
        let key = directory.resolvingSymlinksInPath().standardizedFileURL.path
        let t = table
        t.lock.lock()
        defer { t.lock.unlock() }
        if let entry = t.held[key] {
            t.held[key] = (entry.fd, entry.count + 1)
            return RunLock(key: key)
        }
        let file = directory.appendingPathComponent(".graft-run.lock").path
        let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainError(file: directory.path, "cannot create its lock file (\(String(cString: strerror(errno))))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let holder = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw TrainError(file: directory.path, "is in use by another graft run (process \(holder)); wait for it to finish or choose another output folder")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        t.held[key] = (fd, 1)
        return RunLock(key: key)
    }

    deinit {
        let t = Self.table
        t.lock.lock()
        defer { t.lock.unlock() }
        guard let entry = t.held[key] else { return }
        if entry.count > 1 {
            t.held[key] = (entry.fd, entry.count - 1)
        } else {
            t.held[key] = nil
            close(entry.fd)   // releases the flock
        }
    }
}
