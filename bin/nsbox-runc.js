#!/usr/bin/env node
// nsbox-runc: the OCI runtime CLI (runc's commands), for containerd and Kubernetes. See lib/oci/cli.ts.
'use strict';
import('../dist/oci/main.js').then((m) => m.main());
