#include "postern/imapd/executor.hpp"

#include <doctest/doctest.h>
