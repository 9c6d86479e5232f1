/// A mistake on the command line: one line for stderr, exit status 2 (125 for `svm run`).
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// One option of a command: its spellings, whether it takes a value, and what it does to
/// the command's options.
struct Option<Options>: Sendable {
    let names: [String]
    let takesValue: Bool
    let apply: @Sendable (inout Options, String) throws(UsageError) -> Void

    /// `-x VALUE`, `--long VALUE` and `--long=VALUE`.
    static func value(_ names: String..., apply: @escaping @Sendable (inout Options, String) throws(UsageError) -> Void) -> Option {
        Option(names: names, takesValue: true, apply: apply)
    }

    /// A switch: no value (`--long=...` is refused).
    static func flag(_ names: String..., apply: @escaping @Sendable (inout Options) -> Void) -> Option {
        Option(names: names, takesValue: false) { o, _ in apply(&o) }
    }
}

/// The one option parser every subcommand uses. Options are recognised until `--`; what is
/// not an option is a positional argument. With `stopAtPositional` (svm run) the first
/// positional ends the options and everything from it on is returned as it is (the
/// program and its arguments); otherwise options and positionals may mix (svm logs -f NAME).
enum OptionParser {
    static func parse<Options>(_ arguments: [String], into options: inout Options, options spec: [Option<Options>],
                               command: String, stopAtPositional: Bool = false) throws(UsageError) -> [String] {
        var positionals: [String] = []
        var i = 0
        while i < arguments.count {
            let raw = arguments[i]
            if raw == "--" {
                positionals += arguments[(i + 1)...]
                break
            }
            if !raw.hasPrefix("-") || raw == "-" {
                if stopAtPositional {
                    positionals += arguments[i...]
                    break
                }
                positionals.append(raw)
                i += 1
                continue
            }
            var name = raw
            var inlineValue: String?
            if raw.hasPrefix("--"), let eq = raw.firstIndex(of: "=") {
                inlineValue = String(raw[raw.index(after: eq)...])
                name = String(raw[..<eq])
            }
            guard let option = spec.first(where: { $0.names.contains(name) }) else {
                throw UsageError("unknown option \(raw) (see svm \(command) --help)")
            }
            if option.takesValue {
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else {
                    i += 1
                    guard i < arguments.count else { throw UsageError("\(name) needs a value") }
                    value = arguments[i]
                }
                try option.apply(&options, value)
            } else {
                if inlineValue != nil { throw UsageError("\(name) takes no value") }
                try option.apply(&options, "")
            }
            i += 1
        }
        return positionals
    }
}
