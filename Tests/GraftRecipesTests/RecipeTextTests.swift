import Foundation
import Testing
import GraftTestSupport
@testable import GraftRecipes

/// A recipe's text is checked before the YAML parser expands it.
struct RecipeTextTests {
    static let recipes = URL(fileURLWithPath: TestSupport.fixture("../../Recipes"))

    /// The alias bomb of issue 18 (972 bytes, aliases used as mapping keys: over a minute in the parser) and
    /// plainer anchors: refused at once, naming the line.
    @Test func anchorsAndAliasesAreRefused() throws {
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<10 { bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n" }
        bomb += "? *a9\n: 1\nseed: 1\n"
        let started = Date()
        for (text, line) in [(bomb, 1), ("seed: 1\nmodel: {checkpoint: &c x.h5}\n", 2), ("seed: 1\nstages:\n  - *s\n", 3)] {
            #expect(throws: RecipeError.self) { _ = try Recipe.parse(text, file: "bomb.yaml") }
            do { _ = try Recipe.parse(text, file: "bomb.yaml") } catch let e as RecipeError {
                #expect(e.line == line && e.message.contains("anchors and aliases"), "\(e)")
            }
        }
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(throws: RecipeError.self) {
            _ = try Recipe.load(Self.recipes.appendingPathComponent("quickstart.yaml").path, overrides: ["seed=*a"])
        }
    }

    /// `*` and `&` inside patterns, quotes and comments are ordinary text; every shipped recipe passes.
    @Test func ordinaryStarsAndAmpersandsPass() throws {
        for text in ["freeze: block5_*\n", "freeze: \"*\"\n", "name: 'a & b'\n", "seed: 1 # *not an alias\n", "x: [a*, b&c]\n"] {
            #expect(RecipeText.firstAnchorOrAlias(text) == nil, "\(text)")
        }
        let shipped = try FileManager.default.contentsOfDirectory(atPath: Self.recipes.path).filter { $0.hasSuffix(".yaml") }
        #expect(!shipped.isEmpty)
        for name in shipped {
            let text = try String(contentsOf: Self.recipes.appendingPathComponent(name), encoding: .utf8)
            #expect(RecipeText.firstAnchorOrAlias(text) == nil, "\(name)")
        }
    }

    @Test func oversizedRecipeIsRefused() throws {
        let text = "seed: 1\n" + String(repeating: "# padding\n", count: 200_000)
        #expect(throws: RecipeError.self) { _ = try Recipe.parse(text, file: "big.yaml") }
    }
}
