//! Clients for the services outside our walls. Each has a configurable base URL so that the
//! tests can run it against a local fake that speaks the documented protocol.

pub mod aliyun_sms;
pub mod tencent_sms;
pub mod wechat;
