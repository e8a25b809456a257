// swift-tools-version:6.0
// Graft: transfer learning for convolutional networks, reading and writing Keras checkpoints.
import PackageDescription

let package = Package(
    name: "Graft",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "graft", targets: ["graft"]),
        .executable(name: "graft-hdf5-check", targets: ["graft-hdf5-check"]),
        .library(name: "GraftCore", targets: ["GraftCore"]),
        .library(name: "GraftHDF5", targets: ["GraftHDF5"]),
        .library(name: "GraftTensor", targets: ["GraftTensor"]),
        .library(name: "GraftNN", targets: ["GraftNN"]),
        .library(name: "GraftKeras", targets: ["GraftKeras"]),
        .library(name: "GraftData", targets: ["GraftData"]),
        .library(name: "GraftTrain", targets: ["GraftTrain"]),
        .library(name: "GraftRecipes", targets: ["GraftRecipes"]),
        .library(name: "GraftFiles", targets: ["GraftFiles"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries (Debian packages; tools/setup installs them).
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CImage", pkgConfig: "libpng", providers: [.apt(["libpng-dev", "libturbojpeg0-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Element-wise math compiled for the baseline and for AVX2 + FMA, picked at run time (C: Swift cannot).
        .target(name: "CGraftSIMD"),
        // The table of temporary files a signal handler removes (C: async-signal-safe, with C11 atomics).
        .target(name: "CGraftFiles"),
        // SVG plots rendered to PNG by librsvg and cairo, loaded at run time when the machine has them.
        .target(name: "CGraftPlots"),
        // oneDNN and OpenBLAS loaded on first use, after the program's start-up settings (see libraries.c).
        .target(name: "CGraftLibraries", dependencies: ["CDNNL", "CBLAS"], linkerSettings: [.linkedLibrary("dl")]),

        // What every module shares: the error protocol, the runtime options (threads, compute paths, HDF5 open
        // policy) and name patterns. Swift and Foundation only.
        .target(name: "GraftCore"),

        // Atomic writes, temporary files and their cleanup after signals and crashes: every writer uses it.
        .target(name: "GraftFiles", dependencies: ["GraftCore", "CGraftFiles", "CCrypto"]),

        .target(name: "GraftHDF5", dependencies: ["GraftCore", "CHDF5", "GraftFiles"]),
        .target(name: "GraftTensor", dependencies: ["GraftCore", "CBLAS", "CDNNL", "CGraftLibraries", "CGraftSIMD"]),
        .target(name: "GraftNN", dependencies: ["GraftCore", "GraftTensor"]),
        .target(name: "GraftKeras", dependencies: ["GraftCore", "GraftNN", "GraftTensor", "GraftHDF5", "GraftFiles", "ZIPFoundation"]),
        .target(name: "GraftData", dependencies: ["GraftCore", "GraftTensor", "GraftFiles", "CImage", "ZIPFoundation"]),
        .target(name: "GraftTrain", dependencies: ["GraftCore", "GraftNN", "GraftTensor", "GraftData", "GraftKeras", "GraftHDF5", "GraftFiles", "CGraftPlots",
                                          "ZIPFoundation"]),
        .target(name: "GraftRecipes", dependencies: ["GraftCore", "GraftTrain", "GraftKeras", "GraftData", "GraftNN", "GraftTensor", "Yams"]),
        .executableTarget(
            name: "graft",
            dependencies: [
                "GraftCore", "GraftHDF5", "GraftKeras", "GraftData", "GraftTrain", "GraftRecipes", "GraftFiles", "GraftNN", "GraftTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The integrity check graft runs in a child process before libhdf5 opens a file: a small executable that
        // starts fast (graft itself falls back to running `graft check-hdf5` when it is missing).
        .executableTarget(
            name: "graft-hdf5-check",
            dependencies: ["GraftHDF5", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        .target(name: "GraftTestSupport", path: "Tests/GraftTestSupport"),
        .testTarget(name: "GraftCoreTests", dependencies: ["GraftCore"]),
        .testTarget(name: "GraftFilesTests", dependencies: ["GraftFiles", "GraftTestSupport"]),
        .testTarget(name: "GraftHDF5Tests", dependencies: ["GraftCore", "GraftHDF5", "CHDF5", "GraftTestSupport"]),
        .testTarget(name: "GraftTensorTests", dependencies: ["GraftCore", "GraftTensor", "CGraftSIMD"]),
        .testTarget(name: "GraftNNTests", dependencies: ["GraftNN", "GraftTensor"]),
        .testTarget(name: "GraftKerasTests", dependencies: ["GraftCore", "GraftKeras", "GraftHDF5", "GraftData", "GraftNN", "GraftTensor", "GraftTestSupport",
                                                     "ZIPFoundation"]),
        .testTarget(name: "GraftDataTests", dependencies: ["GraftData", "GraftTensor", "GraftTestSupport"]),
        .testTarget(name: "GraftTrainTests", dependencies: ["GraftTrain", "GraftKeras", "GraftData", "GraftHDF5", "GraftNN", "GraftTensor",
                                                    "GraftTestSupport", "ZIPFoundation"]),
        .testTarget(name: "GraftRecipesTests", dependencies: ["GraftRecipes", "GraftTrain", "GraftData", "GraftKeras", "GraftNN", "GraftTensor", "GraftTestSupport"]),
        .testTarget(name: "graftTests", dependencies: ["graft", "GraftCore", "GraftData", "GraftTensor", "CHDF5", "GraftTestSupport"]),
    ]
)
