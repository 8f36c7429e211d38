// main — hands argv to the CLI. Everything lives in the daemon library so
// tests can link it. Run under the name `sendmail` (a symlink such as
// /usr/sbin/sendmail -> postern), every argument goes to `postern sendmail`.
#include <string_view>
#include <vector>

#include "postern/daemon/cli.hpp"

int main(int argc, char** argv)
{
    std::vector<std::string_view> args(argv + 1, argv + argc);
    std::string_view name = argc > 0 ? argv[0] : "";
    if (auto slash = name.rfind('/'); slash != std::string_view::npos)
        name.remove_prefix(slash + 1);
    if (name == "sendmail")
        args.insert(args.begin(), "sendmail");
    return postern::daemon::main(args);
}
