// Compiled only to produce the precompiled <torch/torch.h> that every torch component and test
// program reuses (src/CMakeLists.txt, lamia_torch_pch).
