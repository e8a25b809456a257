import Foundation

/// The one `--data` syntax shared by every command and by recipes.
///
/// - `fashion-mnist:train`, `fashion-mnist:test`: the Debian package `dataset-fashion-mnist`;
/// - `idx:IMAGES,LABELS`: an MNIST-style IDX pair (gzipped or not).
public enum DataSource {
    public static func load(_ spec: String) throws -> ImageDataset {
        if spec.hasPrefix("fashion-mnist:") {
            return try BuiltinDatasets.fashionMNIST(split: String(spec.dropFirst("fashion-mnist:".count)))
        }
        if spec.hasPrefix("idx:") {
            let parts = spec.dropFirst(4).split(separator: ",").map(String.init)
            guard parts.count == 2 else { throw DataError(spec, "expected idx:IMAGES,LABELS") }
            return try BuiltinDatasets.idxPair(images: parts[0], labels: parts[1])
        }
        throw DataError(spec, "unknown data source (fashion-mnist:train, fashion-mnist:test, idx:IMAGES,LABELS)")
    }
}
