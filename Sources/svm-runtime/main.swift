import Glibc
import Runner
import RuntimeCommand

exit(RuntimeCommand.main(Array(CommandLine.arguments.dropFirst()), environment: DefaultGuest.processEnvironment))
