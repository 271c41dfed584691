import Foundation
import KeepsakeFuzzTargets

/// `keepsake-fuzzer`. Built by `make fuzz` (with -sanitize=fuzzer,address and
/// FUZZING defined), it runs libFuzzer on the target KEEPSAKE_FUZZ_TARGET
/// names. Built normally: `keepsake-fuzzer seed DIR` writes the seed corpus,
/// one folder per target, and `keepsake-fuzzer replay TARGET FILE...` runs
/// inputs once (a crash found by `make fuzz` reproduces this way).
@main
enum FuzzerTool {
    static func main() throws {
        #if FUZZING
        runLibFuzzer()
        #else
        try runTool(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    static func runTool(_ arguments: [String]) throws {
        switch arguments.first {
        case "seed"?:
            guard let folder = arguments.dropFirst().first else { return usage() }
            for (target, inputs) in try FuzzTarget.seeds() {
                let directory = URL(fileURLWithPath: folder).appendingPathComponent(target.rawValue)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                for (index, input) in inputs.enumerated() {
                    try Data(input).write(to: directory.appendingPathComponent("seed-\(index)"))
                }
                print("\(target.rawValue): \(inputs.count) seeds")
            }
        case "replay"?:
            guard let name = arguments.dropFirst().first, let target = FuzzTarget(rawValue: name) else { return usage() }
            for file in arguments.dropFirst(2) {
                target.run([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))))
                print("\(file): ok")
            }
        default:
            usage()
        }
    }

    static func usage() {
        FileHandle.standardError.write(Data("""
            usage: keepsake-fuzzer seed DIR | keepsake-fuzzer replay TARGET FILE...
            targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))

            """.utf8))
        exit(64)
    }
}

#if FUZZING
/// libFuzzer's driver: runs the fuzzing loop with the given callback.
@_silgen_name("LLVMFuzzerRunDriver")
private func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target KEEPSAKE_FUZZ_TARGET names (the process stops when it names none).
private let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["KEEPSAKE_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set KEEPSAKE_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

/// libFuzzer's entry point: one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTarget.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

extension FuzzerTool {
    static func runLibFuzzer() {
        _ = fuzzTarget
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(llvmFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}
#endif
