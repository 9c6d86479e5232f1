/// runc-style arguments: `--name value`, `--name=value`, `-name value` (urfave/cli takes
/// one dash as well as two), boolean flags alone or as `--name=true|false`, then
/// positional arguments; `--` ends the flags.
struct ArgumentScanner {
    /// Flags that take a value, by every name they have (without dashes).
    let valued: Set<String>
    /// Flags that take none.
    let boolean: Set<String>
    /// Valued flags that may be given more than once (`exec --env A=1 --env B=2`):
    /// every value is kept, in order, in `lists`.
    var repeated: Set<String> = []

    struct Result {
        var values: [String: String] = [:]
        var lists: [String: [String]] = [:]
        /// Every value of a repeated flag in command-line order, whichever name it was given by.
        var repeatedInOrder: [(name: String, value: String)] = []
        var flags: Set<String> = []
        var positional: [String] = []
    }

    /// - Parameter stopAtFirstPositional: the rest belongs to someone else (a command
    ///   after the global flags; `exec ID CMD ARGS`).
    func scan(_ arguments: [String], stopAtFirstPositional: Bool = false) throws(RuntimeFailure) -> Result {
        var r = Result()
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            if arg == "--" {
                r.positional += arguments[i...]
                break
            }
            guard arg.hasPrefix("-"), arg.count > 1 else {
                r.positional.append(arg)
                if stopAtFirstPositional {
                    r.positional += arguments[i...]
                    break
                }
                continue
            }
            var name = Substring(arg.dropFirst(arg.hasPrefix("--") ? 2 : 1))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = name[..<eq]
            }
            let key = String(name)
            if valued.contains(key) || repeated.contains(key) {
                let value: String
                if let inline {
                    value = inline
                } else {
                    guard i < arguments.count else { throw RuntimeFailure("flag \(arg) needs a value", .usage) }
                    value = arguments[i]
                    i += 1
                }
                r.values[key] = value
                if repeated.contains(key) {
                    r.lists[key, default: []].append(value)
                    r.repeatedInOrder.append((key, value))
                }
            } else if boolean.contains(key) {
                switch inline {
                case nil, "true", "1": r.flags.insert(key)
                case "false", "0": r.flags.remove(key)
                default: throw RuntimeFailure("flag --\(key) takes true or false, not \(inline!)", .usage)
                }
            } else {
                throw RuntimeFailure("unknown flag \(arg)", .usage)
            }
        }
        return r
    }
}
