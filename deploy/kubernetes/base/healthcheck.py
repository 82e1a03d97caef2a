"""Exit 0 when a sweepd coordinator's standard gRPC health service answers SERVING, else 1.

The kubelet's `grpc` probe speaks plaintext only; a coordinator serving TLS is probed with
this instead, from inside its own pod (the image has Python and grpcio):

    python healthcheck.py --tls-ca ca.crt --server-name sweepd-coordinator localhost:50051
    python healthcheck.py localhost:50051          # plaintext

Health checks need no token.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Below the probes' timeoutSeconds (5), so that a hung coordinator is a clear failure here.
TIMEOUT_S = 4.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="HOST:PORT")
    parser.add_argument("--tls-ca", help="trust this CA (PEM): connect with TLS")
    parser.add_argument("--server-name", help="the name the certificate must carry")
    parser.add_argument("--service", default="", help="a service name; empty: the server")
    args = parser.parse_args()
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(f.read())
        options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name \
            else []
        channel = grpc.secure_channel(args.address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            print(f"health check failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(status)
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
