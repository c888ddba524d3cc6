//! The public results page (`GET /campaigns/{id}/results`): the published results in Chinese,
//! readable on a phone, each category's ranking drawn on the server as SVG, with the snapshot
//! hash, the audit head and how to verify them. During the publicity period it shows the
//! draft (拟表彰名单) and the objection form instead. Plain HTML: no script is needed to read
//! it, and the form's script is ES5 for WeChat's browser.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};

use super::campaigns::visible_campaign;
use super::error::ApiError;
use crate::app::Services;
use crate::domain::results::{CategoryResult, EvaluationResults, Results, Stage, TargetResult};
use crate::store::{Campaign, Frozen};

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// "91.40" → 9140; anything else → 0 (the strings come from `domain::results`).
fn hundredths(score: &str) -> i64 {
    let mut parts = score.splitn(2, '.');
    let whole: i64 = parts.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let frac: i64 = parts.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    whole * 100 + frac
}

const BAR_AREA: i64 = 200;
const ROW: i64 = 30;

/// One bar of a chart: its rank, label, score out of 100 ("91.40"), and whether it stands out.
struct Bar<'a> {
    rank: u32,
    label: &'a str,
    score: &'a str,
    highlight: bool,
}

/// A category's candidates as bars; winners stand out.
pub fn chart(cat: &CategoryResult) -> String {
    let bars: Vec<Bar<'_>> = cat
        .candidates
        .iter()
        .map(|c| Bar {
            rank: c.rank,
            label: &c.name,
            score: &c.score,
            highlight: c.winner,
        })
        .collect();
    bar_chart(&cat.name, &bars)
}

/// A horizontal bar per row, its length the score out of 100; highlighted rows in green.
fn bar_chart(title: &str, bars: &[Bar<'_>]) -> String {
    let height = ROW * bars.len().max(1) as i64 + 10;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 360 {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"{}排名图\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(title)
    );
    for (i, c) in bars.iter().enumerate() {
        let y = 5 + ROW * i as i64;
        let width = hundredths(c.score) * BAR_AREA / 10_000;
        let fill = if c.highlight { "#1a7f4b" } else { "#9aa5b1" };
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{ty}\" font-size=\"13\">{rank}. {name}</text>\
             <rect x=\"110\" y=\"{y}\" width=\"{width}\" height=\"20\" rx=\"3\" fill=\"{fill}\"/>\
             <text x=\"{sx}\" y=\"{ty}\" font-size=\"13\">{score}</text>",
            ty = y + 15,
            rank = c.rank,
            name = escape(&truncate(c.label, 6)),
            sx = 115 + width,
            score = escape(c.score),
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn local_time(at: DateTime<Utc>, timezone: &str) -> String {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at
            .with_timezone(&tz)
            .format("%Y年%m月%d日 %H:%M")
            .to_string(),
        Err(_) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn method_text(r: &Results) -> String {
    if let Some(ev) = &r.evaluation {
        let groups: Vec<String> = ev
            .groups
            .iter()
            .map(|g| format!("{} {}", group_name(g.group), g.weight))
            .collect();
        return format!(
            "满意率 =（满意 + 基本满意）÷ 评价数。各评议群体得分 = 该群体评价的平均分（满意 {}、基本满意 {}、不满意 {} 分）；\
             加权得分 = Σ 权重 × 群体得分 ÷ 参与评价群体的权重之和（权重：{}）。",
            ev.level_points.satisfied,
            ev.level_points.basically_satisfied,
            ev.level_points.unsatisfied,
            groups.join("、")
        );
    }
    let Some(m) = &r.method else {
        return String::new();
    };
    if m.expert_weight == 0 {
        "总分 = 100 × 本人有效票数 ÷ 本类别最高有效票数。".into()
    } else {
        format!(
            "总分 = {} × 本人有效票数 ÷ 本类别最高有效票数 + {} × 专家评分之和 ÷（专家人数 × 满分 {}）；\
             同一候选人有{}位及以上专家评分时，去掉一个最高分和一个最低分。",
            m.public_weight, m.expert_weight, m.max_expert_points, m.trim_from
        )
    }
}

fn group_name(g: crate::domain::rating::RaterGroup) -> &'static str {
    use crate::domain::rating::RaterGroup as G;
    match g {
        G::Public => "群众",
        G::ServiceObject => "服务对象",
        G::PartyMember => "党员",
        G::Leader => "领导",
        G::Supervisor => "行风监督员",
    }
}

/// An evaluation's units ranked by weighted score as bars, and every target in a table.
fn evaluation_sections(ev: &EvaluationResults) -> String {
    let mut units: Vec<&TargetResult> = ev
        .targets
        .iter()
        .filter(|t| t.parent_id.is_none() && t.weighted_score.is_some())
        .collect();
    units
        .sort_by_key(|t| std::cmp::Reverse(hundredths(t.weighted_score.as_deref().unwrap_or("0"))));
    let bars: Vec<Bar<'_>> = units
        .iter()
        .enumerate()
        .map(|(i, t)| Bar {
            rank: i as u32 + 1,
            label: &t.name,
            score: t.weighted_score.as_deref().unwrap_or("0.00"),
            highlight: false,
        })
        .collect();
    let mut rows = String::new();
    for t in &ev.targets {
        rows.push_str(&format!(
            "<tr><td>{code}</td><td>{indent}{name}</td><td>{rated}</td><td>{s}</td><td>{b}</td><td>{u}</td>\
             <td>{rate}</td><td><b>{score}</b></td></tr>",
            code = escape(&t.code),
            indent = if t.parent_id.is_some() { "└ " } else { "" },
            name = escape(&t.name),
            rated = t.counts.rated,
            s = t.counts.satisfied,
            b = t.counts.basically_satisfied,
            u = t.counts.unsatisfied,
            rate = t.satisfaction_rate.as_deref().map(escape).unwrap_or_else(|| "—".into()),
            score = t.weighted_score.as_deref().map(escape).unwrap_or_else(|| "—".into()),
        ));
    }
    format!(
        "<section><h2>各单位加权得分</h2>{}</section><section><h2>各参评对象</h2><table><thead><tr><th>编码</th>\
         <th>名称</th><th>评价</th><th>满意</th><th>基本满意</th><th>不满意</th><th>满意率</th><th>得分</th></tr>\
         </thead><tbody>{rows}</tbody></table></section>",
        bar_chart("各单位加权得分", &bars)
    )
}

fn table(cat: &CategoryResult, winners_only: bool) -> String {
    let mut rows = String::new();
    for c in cat.candidates.iter().filter(|c| c.winner || !winners_only) {
        rows.push_str(&format!(
            "<tr class=\"{cls}\"><td>{rank}</td><td>{number}</td><td>{name}</td><td>{unit}</td>\
             <td>{votes}</td><td>{expert}</td><td><b>{score}</b></td></tr>",
            cls = if c.winner { "winner" } else { "" },
            rank = c.rank,
            number = c.number,
            name = escape(&c.name),
            unit = escape(&c.unit),
            votes = c.votes,
            expert = c
                .expert_points
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "—".into()),
            score = escape(&c.score),
        ));
    }
    format!(
        "<table><thead><tr><th>名次</th><th>编号</th><th>姓名</th><th>单位</th><th>有效票</th>\
         <th>专家分</th><th>总分</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

const STYLE: &str = "body{font-family:-apple-system,\"PingFang SC\",\"Microsoft YaHei\",\"WenQuanYi Micro Hei\",sans-serif;margin:0;background:#f5f6f8;color:#222}\
main{max-width:640px;margin:0 auto;padding:16px 14px 40px}h1{font-size:21px;margin:8px 0}\
h2{font-size:18px;margin:22px 0 8px}section{background:#fff;border-radius:10px;padding:12px 12px 6px;margin-bottom:14px}\
table{width:100%;border-collapse:collapse;font-size:13px;margin:8px 0}th,td{padding:5px 3px;border-bottom:1px solid #eee;text-align:left}\
tr.winner td{background:#eef8f2}.meta{font-size:13px;color:#555;line-height:1.7;word-break:break-all}\
code,pre{font-size:12px;background:#f0f2f4;border-radius:4px;padding:1px 4px}pre{padding:8px;overflow-x:auto;white-space:pre-wrap}\
.badge{display:inline-block;background:#1a7f4b;color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}\
form textarea,form input{width:100%;box-sizing:border-box;margin:4px 0 8px;padding:8px;font-size:15px;border:1px solid #ccd;border-radius:6px}\
form button{width:100%;padding:12px;font-size:16px;border:0;border-radius:8px;background:#1a7f4b;color:#fff}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// The published results; `base` is the site's address, for the commands shown.
pub fn published_page(campaign: &Campaign, f: &Frozen, base: &str) -> String {
    let id = campaign.id;
    let mut body = format!(
        "<h1>{}</h1><p><span class=\"badge\">评选结果</span> 发布于 {}</p>",
        escape(&campaign.title),
        local_time(f.frozen_at, &campaign.timezone)
    );
    if let Some(ev) = &f.results.evaluation {
        body.push_str(&evaluation_sections(ev));
    }
    for cat in &f.results.categories {
        body.push_str(&format!(
            "<section><h2>{}（当选 {} 名）</h2>{}{}</section>",
            escape(&cat.name),
            cat.winners,
            chart(cat),
            table(cat, false)
        ));
    }
    body.push_str(&format!(
        "<section><h2>计分方法</h2><p class=\"meta\">{method}{counting}</p></section>\
         <section><h2>如何核验</h2><div class=\"meta\">\
         <p>结果快照哈希（snapshot_hash）：<code id=\"snapshot\">{snapshot}</code></p>\
         <p>发布时的审计链头：第 {head_seq} 条，<code id=\"head\">{head_hash}</code></p>\
         <p>发布记录为审计链第 {seq} 条。任何人都可以下载全部审计记录，自行核对每一条记录的哈希，并从选票、\
         审核决定和专家评分重新计算上面每一个数字：</p>\
         <pre>curl -o chain.jsonl {base}{export}\npython3 verify_results.py --file chain.jsonl</pre>\
         <p>或直接：<code>python3 verify_results.py --base-url {base} --campaign {id}</code>。\
         核验脚本只用 Python 标准库，见本项目 <code>tools/verify_results.py</code> 与 <code>docs/verification.md</code>。</p>\
         <p>下载：<a href=\"/api/v1/campaigns/{id}/results\">结果（JSON）</a> · \
         <a href=\"/api/v1/campaigns/{id}/results.csv\">结果（CSV）</a> · \
         <a href=\"{export}\">审计记录（JSON Lines）</a></p></div></section>",
        method = escape(&method_text(&f.results)),
        counting = if f.results.evaluation.is_some() {
            ""
        } else {
            " 只计有效票：待审核（隔离）和已作废的选票、已撤回候选人的票不计入。并列时票数多者在前，再按编号从小到大。"
        },
        snapshot = escape(&f.snapshot_hash),
        head_seq = f.head_seq,
        head_hash = escape(&f.head_hash),
        seq = f.seq,
        export = format_args!("/api/v1/campaigns/{id}/audit/export"),
        base = escape(base),
    ));
    page(&format!("{} 评选结果", campaign.title), &body)
}

/// The draft in its publicity period, with the objection form while objections are open.
pub fn draft_page(
    campaign: &Campaign,
    f: &Frozen,
    objections_open: bool,
    until: Option<DateTime<Utc>>,
) -> String {
    let id = campaign.id;
    let mut body = format!(
        "<h1>{}</h1><p><span class=\"badge\">拟表彰名单 · 公示</span></p><p class=\"meta\">{}</p>",
        escape(&campaign.title),
        match until {
            Some(t) => format!(
                "公示期至 {}。如有异议，请在公示期内实名或匿名提出，并留下联系方式以便答复。",
                local_time(t, &campaign.timezone)
            ),
            None => "公示期内如有异议，请留下联系方式以便答复。".into(),
        }
    );
    for cat in &f.results.categories {
        body.push_str(&format!(
            "<section><h2>{}（拟表彰 {} 名）</h2>{}</section>",
            escape(&cat.name),
            cat.winners,
            table(cat, true)
        ));
    }
    body.push_str(&format!(
        "<p class=\"meta\">公示名单快照哈希：<code>{}</code>（审计链第 {} 条）</p>",
        escape(&f.snapshot_hash),
        f.seq
    ));
    if objections_open {
        body.push_str(&format!(
            "<section><h2>提出异议</h2><form id=\"objection\">\
             <input name=\"name\" maxlength=\"50\" placeholder=\"姓名（选填）\">\
             <input name=\"contact\" maxlength=\"100\" placeholder=\"联系电话或邮箱（必填，仅主办方可见）\">\
             <textarea name=\"content\" maxlength=\"2000\" placeholder=\"异议内容（请写明候选人姓名或编号及事实）\"></textarea>\
             <button type=\"submit\">提交异议</button><p class=\"meta\" id=\"answer\"></p></form></section>\
             <script>(function(){{var f=document.getElementById('objection');f.onsubmit=function(e){{e.preventDefault();\
             var x=new XMLHttpRequest();x.open('POST','/api/v1/campaigns/{id}/objections');\
             x.setRequestHeader('Content-Type','application/json');x.onload=function(){{var a=document.getElementById('answer');\
             if(x.status==201){{f.reset();a.textContent='已收到您的异议，主办方将核实后答复。';}}else{{var m='提交失败，请稍后再试';\
             try{{m=JSON.parse(x.responseText).error.message;}}catch(err){{}}a.textContent=m;}}}};\
             x.send(JSON.stringify({{name:f.name.value,contact:f.contact.value,content:f.content.value}}));}};}})();</script>"
        ));
    }
    page(&format!("{} 拟表彰名单公示", campaign.title), &body)
}

fn message(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page(
            "评选结果",
            &format!("<section><p>{}</p></section>", escape(text)),
        ))
}

/// The results page.
#[utoipa::path(tag = "citizen", params(("campaign_id" = String, Path)), responses(
    (status = 200, content_type = "text/html", description = "the published results, or the draft in publicity"),
    (status = 404, description = "not published yet"),
))]
#[get("/campaigns/{campaign_id}/results")]
pub async fn results_page(services: web::Data<Services>, path: web::Path<String>) -> HttpResponse {
    // The configured address, never the request's Host (a cached page must not point
    // verifiers elsewhere).
    let base = services.settings.sms.public_base_url.clone();
    match render(&services, &path, &base).await {
        Ok(r) => r,
        Err(ApiError::NotFound) => message(StatusCode::NOT_FOUND, "没有这个活动。"),
        Err(e) => {
            tracing::error!(error = %e, "results page not shown");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用，请稍后再试。",
            )
        }
    }
}

async fn render(services: &Services, raw: &str, base: &str) -> Result<HttpResponse, ApiError> {
    let campaign = visible_campaign(services, raw).await?;
    let html = |body: String| {
        Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body))
    };
    if let Some(f) = services
        .store
        .frozen_results(campaign.id, Stage::Final)
        .await?
    {
        return html(published_page(&campaign, &f, base));
    }
    if let Some(f) = services
        .store
        .frozen_results(campaign.id, Stage::Draft)
        .await?
    {
        let state = crate::app::results::freeze_state(&campaign, None);
        let open = crate::domain::results::in_publicity(
            &crate::domain::results::FreezeState {
                last_frozen: Some(Stage::Draft),
                ..state
            },
            services.now(),
        );
        let until = campaign
            .phases
            .iter()
            .find(|w| w.phase == crate::domain::campaign::Phase::Publicity)
            .map(|w| w.ends_at);
        return html(draft_page(&campaign, &f, open, until));
    }
    Ok(message(
        StatusCode::NOT_FOUND,
        "评选结果尚未公布，请关注后续通知。",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::results::{CandidateResult, CategoryResult};

    fn row(rank: u32, name: &str, score: &str, winner: bool) -> CandidateResult {
        CandidateResult {
            rank,
            candidate_id: rank as i64,
            number: rank as i64,
            name: name.into(),
            unit: "县医院".into(),
            votes: 10,
            vote_points: "100.00".into(),
            expert_count: 0,
            expert_points: None,
            score: score.into(),
            winner,
        }
    }

    #[test]
    fn bars_are_as_long_as_the_scores_and_names_are_escaped() {
        let cat = CategoryResult {
            id: 1,
            name: "最美<医生>".into(),
            winners: 1,
            candidates: vec![
                row(1, "张三", "100.00", true),
                row(2, "李<四>", "45.50", false),
            ],
        };
        let svg = chart(&cat);
        assert!(svg.contains("width=\"200\""), "{svg}");
        assert!(svg.contains("width=\"91\""), "{svg}");
        assert!(svg.contains("李&lt;四&gt;"));
        assert!(!svg.contains("<四>"));
        assert!(svg.contains("#1a7f4b"));
    }
}
