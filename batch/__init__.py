"""Bulk scoring (`crm-batch`): files of customers in, one scored file out.

Both engines (local processes, Ray Data actors) build the server's data plane in-process and
call its handlers, so a bulk score equals the served one. Nothing here imports gRPC's server
side or reimplements a feature, rule or segment; the server never imports this package.
"""
