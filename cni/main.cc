#include <iostream>

// A CNI plugin answers on stdout with a CNI error object; until the chained plugin is written
// it fails every command loudly so that a runtime never believes a container is protected.
int main() {
  std::cout << R"({"cniVersion":"1.0.0","code":999,"msg":"bulkhead-cni: not implemented yet"})"
            << "\n";
  return 1;
}
