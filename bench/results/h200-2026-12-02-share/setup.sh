# Sourced by each call: node and the built CLI from the carried folder, the machine noted.
G=$PWD/.gpu8
if [ ! -x /tmp/node/bin/node ]; then
  mkdir -p /tmp/node/bin && xz -dc "$G/node.xz" > /tmp/node/bin/node && chmod +x /tmp/node/bin/node
  tar -xJf "$G/app.tar.xz" -C /tmp
  printf '#!/bin/sh\nexec /tmp/node/bin/node /tmp/app/dist/cli/main.js "$@"\n' > /tmp/node/bin/autoresearch
  chmod +x /tmp/node/bin/autoresearch
fi
export PATH=/tmp/node/bin:$PATH PYTHONUNBUFFERED=1
