// main — hands argv to the CLI. Everything lives in the daemon library so
// tests can link it.
#include <string_view>
#include <vector>

#include "postern/daemon/cli.hpp"

int main(int argc, char** argv)
{
    std::vector<std::string_view> args(argv + 1, argv + argc);
    return postern::daemon::main(args);
}
