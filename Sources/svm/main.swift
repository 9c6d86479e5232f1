import Glibc
import SVMCommand

exit(SVMCommand.main(Array(CommandLine.arguments.dropFirst())))
