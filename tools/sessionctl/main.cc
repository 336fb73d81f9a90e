// sessionctl: the sessiond admin CLI. See sessionctl.h for the commands.
#include "tools/sessionctl/sessionctl.h"

int main(int argc, char** argv) {
  sessiond::sessionctl::Sessionctl sessionctl;
  return sessionctl.Main(argc, argv);
}
