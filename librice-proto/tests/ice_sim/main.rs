//! Deterministic network simulation tests for librice-proto: ICE agents exchange datagrams
//! over a virtual network with configurable links and NATs, driven by a virtual clock.

mod batch;
mod harness;
mod hostile;
mod icetcp;
mod icetcp_so;
mod lite;
mod liveness;
mod mdns;
mod mux;
mod netchange;
mod redirect;
mod relay;
mod renomination;
mod restart;
mod scenarios;
mod stats;
mod turn;
