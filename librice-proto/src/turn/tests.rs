//! TURN client tests.
