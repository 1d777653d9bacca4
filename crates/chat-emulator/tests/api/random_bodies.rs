//! random_bodies
