#include <boost/program_options.hpp>

#include <iostream>

// The agent's live dataplane (DPDK ports, workers, control API) is the next milestone; until it
// lands this binary only documents itself and refuses to run rather than pretending to enforce.
int main(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("bulkheadd - the bulkhead agent");
  options.add_options()("help,h", "show this help")("version", "print the version");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
  } catch (const po::error& e) {
    std::cerr << "bulkheadd: " << e.what() << "\n" << options;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "bulkheadd " << BULKHEAD_VERSION << "\n";
    return 0;
  }
  std::cerr << "bulkheadd: the live dataplane is not implemented yet; use 'bulkhead simulate' to "
               "evaluate policies against captures\n";
  return 1;
}
