// The one Catch2 main shared by every component's test program.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
