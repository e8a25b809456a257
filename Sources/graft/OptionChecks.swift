import ArgumentParser
import GraftData
import GraftNN
import GraftTrain

/// Range checks for the numbers the inference and data commands take, with fine-tune's limits
/// (`FineTuneLimits`), so `--batch 9223372036854775807` or `--input-size 0,1e9` is refused the same way everywhere.
enum OptionChecks {
    static func whole(_ value: Int, _ range: ClosedRange<Int>, _ option: String) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(value)")
        }
    }

    static func batch(_ value: Int) throws {
        try whole(value, FineTuneLimits.batchSize, "--batch")
    }

    /// `H,W` (or `H,W,C` when `channels`), every side within `FineTuneLimits.inputSide`, channels 1 to 4.
    static func size(_ text: String, _ option: String, channels: Bool = false) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let dims = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dims.count == parts.count, dims.count == (channels ? 3 : 2) else {
            throw ValidationError("\(option) must be \(channels ? "H,W,C" : "H,W") (whole numbers), got \(text)")
        }
        for side in dims.prefix(2) { try whole(side, FineTuneLimits.inputSide, option) }
        if channels { try whole(dims[2], 1...4, "\(option) channels") }
        return dims
    }

    /// `--class-subset 5,6,7`: whole numbers, each a class index below `FineTuneLimits.classes`' bound.
    static func classList(_ text: String) throws -> [Int] {
        let ids = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ $0 != nil }) else { throw ValidationError("--class-subset must be integers, got \(text)") }
        let list = ids.compactMap { $0 }
        for c in list { try whole(c, 0...(FineTuneLimits.classes.upperBound - 1), "--class-subset") }
        return list
    }

    /// A transform for `@Option`: the text parsed into the typed value recipes decode into, its error as the
    /// option's (`The value 'cosin' is invalid for '--schedule <schedule>': unknown schedule …`).
    static func typed<T>(_ parse: @escaping @Sendable (String) throws -> T) -> @Sendable (String) throws -> T {
        { text in
            do { return try parse(text) } catch let e as TrainError { throw ValidationError(e.message) } catch let e as DataError {
                throw ValidationError(e.message)
            }
        }
    }

    /// A transform for an option that names one of a few values (`--nan stop|skip`), with the nearest for a typo.
    static func choice<T: RawRepresentable & CaseIterable & Sendable>(_: T.Type) -> @Sendable (String) throws -> T where T.RawValue == String {
        { text in
            do { return try Suggestions.choice(text, of: T.self) } catch let e as ChoiceError { throw ValidationError(e.description) }
        }
    }
}
