import GraftTensor

/// A network: a directed acyclic graph of layer applications (nodes) in topological order.
/// Sequential models are the chain case. A `Model` is itself a `Layer`, so models nest (a Sequential
/// holding a keras.applications base).
public final class Model: Layer {
    /// One application of a layer to the outputs of earlier nodes.
    public struct Node {
        public let layer: any Layer
        /// Indices of the nodes whose outputs feed this one, in argument order.
        public let inputs: [Int]
        /// Output shape without the batch axis (-1 unknown).
        public let outputShape: [Int]
    }

    public let name: String
    /// `Functional` or `Sequential` (what Keras would write back).
    public let kerasClassName: String
    public let nodes: [Node]
    /// Node indices of the model inputs (InputLayer nodes) and outputs.
    public let inputNodes: [Int]
    public let outputNodes: [Int]
    /// Shared with every model that shares this one's layers; see `ModelAccess`.
    public let access: ModelAccess

    init(name: String, kerasClassName: String, nodes: [Node], inputNodes: [Int], outputNodes: [Int], access: ModelAccess) {
        self.name = name
        self.kerasClassName = kerasClassName
        self.nodes = nodes
        self.inputNodes = inputNodes
        self.outputNodes = outputNodes
        self.access = access
    }

    /// Each distinct layer once, in the order of first use.
    public var layers: [any Layer] {
        var seen = Set<ObjectIdentifier>()
        return nodes.compactMap { seen.insert(ObjectIdentifier($0.layer)).inserted ? $0.layer : nil }
    }

    /// The layer called `name`, searching nested models too.
    public func layer(named name: String) -> (any Layer)? {
        for l in layers {
            if l.name == name { return l }
            if let m = l as? Model, let found = m.layer(named: name) { return found }
        }
        return nil
    }

    /// Input shapes without the batch axis.
    public var inputShapes: [[Int]] { inputNodes.map { nodes[$0].outputShape } }

    /// A batch held as images (`[N, H, W, C]`, as the data pipeline makes them) reshaped to the model's one input
    /// when that is a sequence, token ids or a clip of the same size (`DataSource.heldShape`); other batches as given.
    public func fittingInput(_ x: Tensor) -> Tensor {
        guard inputShapes.count == 1, let want = inputShapes.first, x.rank >= 1, Array(x.shape.dropFirst()) != want else { return x }
        let n = x.shape[0], per = n == 0 ? 0 : x.count / n
        let known = want.filter { $0 >= 0 }.reduce(1, *)
        let unknown = want.filter { $0 < 0 }.count
        guard unknown <= 1, known > 0, per % known == 0, unknown == 1 || per == known else { return x }
        return x.reshaped([n] + want.map { $0 < 0 ? per / known : $0 })
    }
    /// Output shapes without the batch axis.
    public var outputShapes: [[Int]] { outputNodes.map { nodes[$0].outputShape } }

    // MARK: Layer

    /// Variables of every inner layer, keyed `innerLayer/key`.
    public var variables: [(key: String, variable: Variable)] {
        layers.flatMap { l in l.variables.map { (key: "\(l.name)/\($0.key)", variable: $0.variable) } }
    }

    public func variableKey(forCheckpointName name: String) -> String? {
        variables.contains { $0.key == name } ? name : nil
    }

    public func build(inputShapes shapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        guard shapes.count == inputNodes.count else {
            throw LayerError(name, "expects \(inputNodes.count) inputs, got \(shapes.count)")
        }
        for (given, want) in zip(shapes, inputShapes) {
            guard given.count == want.count, zip(given, want).allSatisfy({ $0 == $1 || $0 < 0 || $1 < 0 }) else {
                throw LayerError(name, "expects input \(Shape.describe([-1] + want)), got \(Shape.describe([-1] + given))")
            }
        }
        guard outputNodes.count == 1 else { throw LayerError(name, "a nested model must have one output") }
        return nodes[outputNodes[0]].outputShape
    }

    /// The Layer entry, for a parent model: runs under the parent's `access`, taking none itself.
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try evaluate(inputs, targets: [outputNodes[0]], training: training)[0]
    }

    /// All outputs of the model for `inputs` (one tensor per model input, batch first). Safe to call from several
    /// threads at once; with `training: true` (batch statistics, dropout) it waits for other users to finish.
    public func predict(_ inputs: [Tensor], training: Bool = false) throws -> [Tensor] {
        try run(inputs, targets: outputNodes, training: training)
    }

    /// The outputs of the nodes `targets`, computing only what they depend on and releasing
    /// intermediate tensors as soon as their last consumer has run. Thread-safe like `predict`.
    public func run(_ inputs: [Tensor], targets: [Int], training: Bool = false) throws -> [Tensor] {
        training ? try access.exclusive { try evaluate(inputs, targets: targets, training: true) }
            : try access.shared { try evaluate(inputs, targets: targets, training: false) }
    }

    /// `run` without taking `access` (the caller holds it).
    func evaluate(_ inputs: [Tensor], targets: [Int], training: Bool) throws -> [Tensor] {
        guard inputs.count == inputNodes.count else {
            throw LayerError(name, "expects \(inputNodes.count) input tensors, got \(inputs.count)")
        }
        var needed = [Bool](repeating: false, count: nodes.count)
        var stack = targets
        while let i = stack.popLast() {
            if needed[i] { continue }
            needed[i] = true
            stack.append(contentsOf: nodes[i].inputs)
        }
        var remaining = [Int](repeating: 0, count: nodes.count)
        for (i, node) in nodes.enumerated() where needed[i] {
            for j in node.inputs { remaining[j] += 1 }
        }
        for t in targets { remaining[t] += 1 }
        var values = [Tensor?](repeating: nil, count: nodes.count)
        for (k, i) in inputNodes.enumerated() where needed[i] {
            values[i] = try nodes[i].layer.forward([inputs[k]], training: training)
        }
        let fusions = training ? [:] : inferenceFusions(needed: needed, targets: targets)
        var absorbed = [Bool](repeating: false, count: nodes.count)
        for (i, node) in nodes.enumerated() where needed[i] && values[i] == nil && !absorbed[i] {
            var args: [Tensor] = []
            args.reserveCapacity(node.inputs.count)
            for j in node.inputs {
                guard let v = values[j] else { throw LayerError(node.layer.name, "input from node \(j) was not computed") }
                args.append(v)
                remaining[j] -= 1
                if remaining[j] == 0 { values[j] = nil }
            }
            if let fusion = fusions[i], let conv = node.layer as? InferenceFusable {
                // The convolution computes the value of the chain's last node; the absorbed nodes never run.
                values[fusion.last] = try conv.fusedInference(args, batchNorm: fusion.batchNorm, activation: fusion.activation)
                for j in fusion.absorbed { absorbed[j] = true }
                continue
            }
            values[i] = try node.layer.forward(args, training: training)
        }
        return try targets.map { t in
            guard let v = values[t] else { throw LayerError(name, "output node \(t) was not computed") }
            return v
        }
    }

    /// The index of the (last) node applying the layer called `name` at the top level.
    public func nodeIndex(ofLayer name: String) -> Int? {
        nodes.lastIndex { $0.layer.name == name }
    }

    // MARK: parameters

    /// Every variable with its path `layer/key` (nested models: `outer/inner/key`), in Keras weight order.
    public var namedVariables: [(path: String, variable: Variable)] {
        variables.map { (path: $0.key, variable: $0.variable) }
    }

    /// Parameter counts as Keras reports them: buffers and frozen parameters are non-trainable.
    public var parameterCounts: (total: Int, trainable: Int, nonTrainable: Int) {
        var total = 0, trainable = 0
        for (_, v) in namedVariables {
            total += v.value.count
            if v.isTrainable { trainable += v.value.count }
        }
        return (total, trainable, total - trainable)
    }
}

/// Builds a `Model` node by node, inferring shapes and creating variables as layers are added.
public struct GraphBuilder {
    public let name: String
    public let kerasClassName: String
    private var nodes: [Model.Node] = []
    private var inputNodes: [Int] = []
    private var built: [ObjectIdentifier: (inputs: [[Int]], output: [Int])] = [:]
    private var names: [String: ObjectIdentifier] = [:]
    private var rng: SplitMix64
    /// The `ModelAccess` of the model whose layers this one takes over (extended, or nested first); a new one if none.
    var access: ModelAccess?

    public init(name: String, kerasClassName: String = "Functional", seed: UInt64 = 0) {
        self.name = name
        self.kerasClassName = kerasClassName
        self.rng = SplitMix64(seed: seed)
    }

    /// The output shape of node `i` (batch excluded), empty for a node that does not exist.
    public func outputShape(of i: Int) -> [Int] { i >= 0 && i < nodes.count ? nodes[i].outputShape : [] }

    /// Adds a model input of `shape` (batch excluded; -1 unknown) and returns its node index.
    public mutating func input(_ layer: InputLayer) throws -> Int {
        try checkName(layer)
        try Self.requireReasonableOutput(layer.shape, layer: layer.name)
        nodes.append(Model.Node(layer: layer, inputs: [], outputShape: layer.shape))
        inputNodes.append(nodes.count - 1)
        return nodes.count - 1
    }

    /// Applies `layer` to the outputs of nodes `inputs`; builds it on first use (a layer used again shares its variables).
    /// The most elements one sample's output may have (2^28 floats, 1 GiB): a config declaring more (an
    /// UpSampling2D by 10^6) is refused while the model is built, not when a batch would be allocated.
    public static let maxElementsPerSample = 1 << 28

    static func requireReasonableOutput(_ shape: [Int], layer: String) throws {
        var count = 1
        for d in shape where d >= 0 {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxElementsPerSample else {
                throw LayerError(layer, "output \(Shape.describe([-1] + shape)) is too large (at most \(maxElementsPerSample) values per sample)")
            }
            count = product
        }
    }

    @discardableResult
    public mutating func add(_ layer: any Layer, inputs: [Int]) throws -> Int {
        for i in inputs where i < 0 || i >= nodes.count {
            throw LayerError(layer.name, "refers to a node that does not exist yet")
        }
        let shapes = inputs.map { nodes[$0].outputShape }
        let id = ObjectIdentifier(layer)
        let output: [Int]
        if let previous = built[id] {
            guard previous.inputs == shapes else {
                throw LayerError(layer.name, "is shared but called on \(shapes.map { Shape.describe([-1] + $0) }) after \(previous.inputs.map { Shape.describe([-1] + $0) })")
            }
            output = previous.output
        } else {
            try checkName(layer)
            output = try layer.build(inputShapes: shapes, rng: &rng)
            try Self.requireReasonableOutput(output, layer: layer.name)
            built[id] = (shapes, output)
        }
        nodes.append(Model.Node(layer: layer, inputs: inputs, outputShape: output))
        if access == nil, let nested = layer as? Model { access = nested.access }
        return nodes.count - 1
    }

    /// Appends a layer that is already built (its variables kept), producing `outputShape`.
    @discardableResult
    public mutating func addBuilt(_ layer: any Layer, inputs: [Int], outputShape: [Int]) throws -> Int {
        for i in inputs where i < 0 || i >= nodes.count { throw LayerError(layer.name, "refers to a node that does not exist yet") }
        try checkName(layer)
        built[ObjectIdentifier(layer)] = (inputs.map { nodes[$0].outputShape }, outputShape)
        nodes.append(Model.Node(layer: layer, inputs: inputs, outputShape: outputShape))
        if access == nil, let nested = layer as? Model { access = nested.access }
        return nodes.count - 1
    }

    /// Takes over `model`'s nodes as already built (used by `init(extending:)`).
    mutating func adopt(_ model: Model) {
        access = model.access
        nodes = model.nodes
        inputNodes = model.inputNodes
        for n in model.nodes {
            built[ObjectIdentifier(n.layer)] = (n.inputs.map { model.nodes[$0].outputShape }, n.outputShape)
            names[n.layer.name] = ObjectIdentifier(n.layer)
        }
    }

    /// Refuses a name a person could not read safely: control characters (ANSI escapes and newlines would reach
    /// the terminal raw through `summary`) or more than 1,024 bytes (a 10 MB name made 126 MB of summary).
    static func requirePrintableName(_ name: String, what: String) throws {
        let control = name.unicodeScalars.contains { $0.properties.generalCategory == .control }
        guard !control, name.utf8.count <= 1024 else {
            let shown = String(name.unicodeScalars.prefix(40).map { $0.properties.generalCategory == .control ? "?" : Character($0) })
            throw LayerError(shown + (name.unicodeScalars.count > 40 ? "…" : ""),
                             control ? "\(what) name holds control characters" : "\(what) name is \(name.utf8.count) bytes long (at most 1024)")
        }
    }

    private mutating func checkName(_ layer: any Layer) throws {
        try Self.requirePrintableName(layer.name, what: "layer")
        if let existing = names[layer.name], existing != ObjectIdentifier(layer) {
            throw LayerError(layer.name, "the name is used by two different layers")
        }
        names[layer.name] = ObjectIdentifier(layer)
    }

    /// The finished model with `outputs` as its output nodes; `inputs` orders the model inputs
    /// (default: the order they were added).
    public func finish(outputs: [Int], inputs: [Int]? = nil) throws -> Model {
        try Self.requirePrintableName(name, what: "model")
        guard !inputNodes.isEmpty else { throw LayerError(name, "model has no input") }
        guard !outputs.isEmpty, outputs.allSatisfy({ $0 >= 0 && $0 < nodes.count }) else {
            throw LayerError(name, "model outputs refer to unknown nodes")
        }
        let order = inputs ?? inputNodes
        guard Set(order) == Set(inputNodes), order.count == inputNodes.count else {
            throw LayerError(name, "model inputs must be exactly its InputLayer nodes")
        }
        return Model(name: name, kerasClassName: kerasClassName, nodes: nodes, inputNodes: order, outputNodes: outputs,
                     access: access ?? ModelAccess())
    }

    /// A Sequential model: `layers` applied in a chain to an input of `inputShape`.
    public static func sequential(name: String, inputShape: [Int], layers: [any Layer], inputName: String? = nil,
                                  seed: UInt64 = 0) throws -> Model {
        var b = GraphBuilder(name: name, kerasClassName: "Sequential", seed: seed)
        var x = try b.input(InputLayer(name: inputName ?? "\(name)_input", shape: inputShape))
        for l in layers { x = try b.add(l, inputs: [x]) }
        return try b.finish(outputs: [x])
    }
}
