// Debian's libyaml (libyaml-dev): the YAML 1.1 event parser the configuration and resources are read with.
#include <yaml.h>
