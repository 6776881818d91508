"""What the crash harness (scripts/chaos.py) and the delivery verifiers share: the cluster of relay
processes and the faults put on it, the traffic clients send, the audit of what came out, and the
Standard Webhooks checks made with independent libraries."""
