# Every dependency comes from Debian's archive (scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.2 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
# faiss' exported targets use OpenMP without finding it themselves.
find_package(OpenMP REQUIRED)
find_package(faiss REQUIRED)
find_package(Torch REQUIRED)
