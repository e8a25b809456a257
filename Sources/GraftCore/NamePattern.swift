import Foundation

/// Shell-style patterns over names (layer names, weight paths): `*` any run of characters (`/` included), `?` one
/// character, `[abc]` and `[a-z]` one of a set, `\*` a literal star, as fnmatch(3) matches them without flags.
/// Freezing by pattern (`block5_*`) and a load's allowed missing tensors (`predictions/*`) use this one matcher.
public enum NamePattern {
    /// True when `name` matches `pattern` whole.
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
