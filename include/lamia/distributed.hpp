#pragma once
// The distributed component: data-parallel training from C++ on c10d's Gloo process group (built
// where LibTorch ships it: LAMIA_WITH_C10D). The interface the training loop uses is in nn
// (lamia/nn/gradient_sync.hpp).
#include <lamia/distributed/process_group.hpp>
