// The one doctest main shared by every unit-test binary. Log lines of the
// code under test go to /dev/null unless POSTERN_TEST_LOG is set.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdlib>
#include <fcntl.h>

#include <doctest/doctest.h>

#include "postern/log/log.hpp"

int main(int argc, char** argv)
{
    if (!std::getenv("POSTERN_TEST_LOG")) {
        int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            postern::log::set_fd(fd);
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
